"""Smoke test of ml-libraries (with core-data-science below it), run by `nox -s layer_tests`."""

import io

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

features, labels = load_iris(return_X_y=True)  # reads the bundled CSV and its .rst description
train_x, test_x, train_y, test_y = train_test_split(features, labels, random_state=0, stratify=labels)
model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=20, random_state=0)).fit(train_x, train_y)
assert model.score(test_x, test_y) > 0.85

buffer = io.BytesIO()
joblib.dump(model, buffer)
buffer.seek(0)
restored = joblib.load(buffer)
assert np.array_equal(restored.predict(test_x), model.predict(test_x))
print("ml-libraries smoke test passed")
