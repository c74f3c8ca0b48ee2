"""The machine-local stack: moto server, stream poller, demo. Never shipped to Lambda."""
