"""The stream jobs: the consumer loop and one module per job."""
