"""Drive an unpacked model.tar.gz the way the SageMaker Hugging Face inference toolkit does (not a test module).

    python -I toolkit_handler_driver.py MODEL_DIR < requests.json > responses.json

Mirrors `HuggingFaceHandlerService` in sagemaker-huggingface-inference-toolkit (handler_service.py):
`MODEL_DIR/code` first on sys.path, the user module `inference` (SAGEMAKER_PROGRAM may rename it) imported,
`model_fn(model_dir)` once, then per request: the body decoded from UTF-8 for JSON, a missing or `*/*`
Accept replaced by application/json, `output_fn(predict_fn(input_fn(body, content_type), model), accept)`,
and any exception answered as a 400 with its message. Run isolated (`-I`) from another working directory,
so only what the tarball carries can be imported.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

JSON = "application/json"


def main(model_dir: str) -> None:
    sys.path.insert(0, os.path.join(model_dir, "code"))
    user_module = importlib.import_module(os.environ.get("SAGEMAKER_PROGRAM", "inference").removesuffix(".py"))
    model = user_module.model_fn(model_dir)
    responses = []
    for request in json.load(sys.stdin):
        content_type, accept = request.get("content_type"), request.get("accept")
        accept = JSON if not accept or accept == "*/*" else accept
        body: bytes | str = request["body"].encode()
        if content_type == JSON:
            body = body.decode("utf-8")
        try:
            payload = user_module.output_fn(user_module.predict_fn(user_module.input_fn(body, content_type), model),
                                            accept)
            responses.append({"status": 200, "content_type": accept, "body": payload})
        except Exception as exc:
            responses.append({"status": 400, "message": str(exc)})
    loaded = {name: getattr(sys.modules.get(name), "__file__", None) for name in ("model", "torch", "onnxruntime")}
    json.dump({"responses": responses, "modules": loaded}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
