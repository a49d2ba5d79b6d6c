"""The HTTP service (SPEC §5): FastAPI app factory, envelope and error handling, one router per API family."""
