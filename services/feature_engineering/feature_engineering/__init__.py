"""FeatureEngineering: turn a validated batch into the model's feature table."""
