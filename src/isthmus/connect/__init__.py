"""Connect (GCS): one endpoint, its storage gateways, collections, roles and policies."""
