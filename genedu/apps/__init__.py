"""Application experiments built on the course models: augmentation, anomaly detection."""
