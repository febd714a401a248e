"""MLflow pyfunc model *from code*: MLflow stores this file, not a pickle of a Python object.

The logged model's artifacts are a deeppipe model folder (spec.yaml, model.safetensors,
meta.json); ``load_context`` rebuilds the network from the spec and loads the weights.
``predict`` returns class probabilities (classification) or values (regression); pass
``params={"output": "label"}`` for class indices.
"""

from __future__ import annotations

import mlflow
from mlflow.pyfunc import PythonModel


class DeeppipePyfunc(PythonModel):
    # No type hints on predict: MLflow would turn them into a (wrong) schema; the signature is logged.
    def load_context(self, context):
        from deeppipe.artifact import load_artifact

        self.artifact = load_artifact(context.artifacts["model"])
        self.net = self.artifact.build()

    def predict(self, context, model_input, params=None):
        from deeppipe.artifact import serve_outputs

        return serve_outputs(self.artifact, self.net, model_input, (params or {}).get("output", "proba"))


mlflow.models.set_model(DeeppipePyfunc())
