"""Domain logic of the gateway: no FastAPI types here, keyword-only signatures."""
