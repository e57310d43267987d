-- Shared by the wrk scripts: prints one machine-readable line at the end of a run.
function done(summary, latency, requests)
  io.write(string.format(
    "WRK_RESULT requests=%d seconds=%.3f non2xx=%d errors=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
