"""Predictions: score a feature table with the trained model and summarise the scores."""
