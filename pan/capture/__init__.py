"""Capture: load a model and images, run them, and record the analysed layers' feature maps.

- :mod:`pan.capture.models`: model specifications and loading (torchvision, timm,
  EfficientNet-Lite, user code, ONNX); :mod:`pan.capture.onnx`: ONNX graphs through onnx2torch,
  their zero ``Pad`` nodes folded into the convs;
- :mod:`pan.capture.images`: image sources and their transforms; :mod:`pan.capture.classes`: the
  ground-truth classes a folder layout gives;
- :mod:`pan.capture.layers`: the convs the method analyses (kernel larger than 1x1);
- :mod:`pan.capture.padding`: what each conv pads with (zero padding in all its forms);
- :mod:`pan.capture.inference`: device, precision, batches and hooks of every forward pass;
- :mod:`pan.capture.activations`: the forward pass that writes an activation dump.
"""
