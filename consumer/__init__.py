"""The Kafka edge: usage events in, dead letters and replies out."""
