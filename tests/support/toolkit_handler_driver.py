"""Drive an unpacked model.tar.gz the way the SageMaker Hugging Face inference toolkit does (not a test module).

    python -I toolkit_handler_driver.py MODEL_DIR [TOOLKIT_DIR] < requests.json > responses.json

Without TOOLKIT_DIR it mirrors `HuggingFaceHandlerService` in sagemaker-huggingface-inference-toolkit
(handler_service.py): `MODEL_DIR/code` first on sys.path, the user module `inference` (SAGEMAKER_PROGRAM may
rename it) imported, `model_fn(model_dir)` once, then per request: the body decoded from UTF-8 for JSON, a
missing or `*/*` Accept replaced by application/json, `output_fn(predict_fn(input_fn(body, content_type), model),
accept)`, and any exception answered as a 400 with its message.

With TOOLKIT_DIR (the toolkit, sagemaker-inference and multi-model-server installed there with --no-deps) the real
code runs instead: MMS's model loader loads the toolkit's handler service, and each request goes through MMS's
`Service.predict` in its wire format, whose binary answer is decoded here. Run isolated (`-I`) from another
working directory, so only what the tarball carries (and TOOLKIT_DIR) can be imported.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
from typing import Any

JSON = "application/json"
HANDLER_SERVICE = "sagemaker_huggingface_inference_toolkit.handler_service"


def mirror(model_dir: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sys.path.insert(0, os.path.join(model_dir, "code"))
    user_module = importlib.import_module(os.environ.get("SAGEMAKER_PROGRAM", "inference").removesuffix(".py"))
    model = user_module.model_fn(model_dir)
    responses = []
    for request in requests:
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
    return responses


class Reader:
    """MMS's big-endian, length-prefixed answer (mms/protocol/otf_message_handler.py)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = bytes(data), 0

    def int(self) -> int:
        (value,) = struct.unpack_from("!i", self.data, self.offset)
        self.offset += 4
        return value

    def bytes(self) -> bytes:
        length = self.int()
        value = self.data[self.offset:self.offset + length]
        self.offset += length
        return value


def decoded(answer: bytes) -> dict[str, Any]:
    reader = Reader(answer)
    code, message = reader.int(), reader.bytes().decode()
    if code != 200:
        return {"status": code, "message": message}
    reader.bytes()  # request id
    content_type, status = reader.bytes().decode(), reader.int()
    reader.bytes()  # reason phrase
    for _ in range(reader.int()):  # response headers
        reader.bytes(), reader.bytes()
    return {"status": status, "content_type": content_type, "body": reader.bytes().decode()}


def toolkit(model_dir: str, toolkit_dir: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sys.path.append(toolkit_dir)
    import transformers.file_utils

    # Toolkit 2.6.0 imports is_tf_available, which transformers 5 removed; the image's toolkit build no longer does.
    if not hasattr(transformers.file_utils, "is_tf_available"):
        transformers.file_utils.is_tf_available = lambda: False
    from mms.model_loader import MmsModelLoader

    service = MmsModelLoader().load("model", model_dir, HANDLER_SERVICE, None, 1)
    responses = []
    for number, request in enumerate(requests):
        headers = [{"name": b"Content-Type", "value": request["content_type"].encode()}]
        if request.get("accept"):
            headers.append({"name": b"Accept", "value": request["accept"].encode()})
        batch = [{"requestId": f"request-{number}".encode(), "headers": headers, "parameters": [
            {"name": "body", "contentType": request["content_type"], "value": request["body"].encode()}]}]
        responses.append(decoded(service.predict(batch)))
    return responses


def main(model_dir: str, toolkit_dir: str | None) -> None:
    requests = json.load(sys.stdin)
    responses = toolkit(model_dir, toolkit_dir, requests) if toolkit_dir else mirror(model_dir, requests)
    loaded = {name: getattr(sys.modules.get(name), "__file__", None) for name in ("model", "torch", "onnxruntime")}
    json.dump({"responses": responses, "modules": loaded, "transformers": sys.modules["transformers"].__version__
               if "transformers" in sys.modules else None}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
