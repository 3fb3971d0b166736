"""Segment-compatible ingestion (api.md "Segment-compatible ingestion"): the messages of Segment's
HTTP Tracking API translated at the door into catalogue envelopes, which then take the same
`record` path as POST /v1/events. The domain knows nothing of Segment."""
