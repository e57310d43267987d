#!/bin/sh
# Renders page N (default 1) of a PDF to a PNG with pdftoppm (Debian: poppler-utils), to look
# at a document's layout. Usage: tools/render_pdf_page.sh FILE.pdf [OUT.png] [PAGE] [DPI]
set -eu
pdf=${1:?usage: $0 FILE.pdf [OUT.png] [PAGE] [DPI]}
out=${2:-${pdf%.pdf}.png}
page=${3:-1}
dpi=${4:-110}
command -v pdftoppm >/dev/null || { echo "pdftoppm not found: apt-get install -y poppler-utils" >&2; exit 2; }
# -singlefile writes exactly OUT.png (no page-number suffix).
pdftoppm -png -r "$dpi" -f "$page" -l "$page" -singlefile "$pdf" "${out%.png}"
echo "$out"
