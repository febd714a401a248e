"""MLflow pyfunc model *from code*: MLflow stores this file, not a pickle of a Python object.

The logged model carries everything it needs: its artifacts are a deeppipe model folder
(spec.yaml, model.safetensors, meta.json), and deeppipe's own code travels in the model's
``code/`` folder (``code_paths``), so it loads where deeppipe is not installed, from the
model's requirements alone. ``load_context`` rebuilds the network from the spec and loads the
weights; ``predict`` answers class probabilities, ``params={"output": "label"}`` class indices,
``"logits"`` the raw outputs (classification), or values (regression); a text model takes raw
strings, tokenised with the vocabulary in its folder (``tracking.serving``). A request it cannot
answer is refused with MLflow's INVALID_PARAMETER_VALUE, which ``mlflow models serve`` returns as
a 400 with the reason.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class DeeppipePyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        from deeppipe.ensemble.artifact import load_model  # one model or an ensemble of them

        self.artifact = load_model(context.artifacts["model"])
        self.net = self.artifact.build()
        # MLflow's scoring server puts repr(request data) in front of an error message; keep that
        # repr to a few values so a refused request is not echoed back whole
        np.set_printoptions(threshold=8, edgeitems=1)

    # np.ndarray: MLflow then keeps the logged tensor signature and does not guess another one
    def predict(self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from deeppipe.tracking.serving import RequestError, predict

        try:
            return predict(self.artifact, self.net, model_input, (params or {}).get("output"))
        except RequestError as err:
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None


mlflow.models.set_model(DeeppipePyfunc())
