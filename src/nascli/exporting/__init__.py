"""Taking an architecture out of nascli: files that need only PyTorch or ONNX Runtime (`nas export`)."""
