"""The HTTP service (docs/api.md): FastAPI app factory, envelope and error handling, one router per API family."""
