"""The news-headline classifier: one model class, its label map, artifact and inference code.

Kept import-free so that light consumers (the ONNX serving path) never pull in torch.
"""
