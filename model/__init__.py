"""The news-headline classifier's core: model class, labels, encoders, artifact, runtimes; `serving/` and `tools/`
sit beside it and the core imports neither.

Kept import-free so that light consumers (the ONNX serving path) never pull in torch.
"""
