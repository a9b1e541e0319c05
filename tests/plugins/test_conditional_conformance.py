"""The conformance suite (gantransfer.testing) for the conditional models: class-conditional
DCGAN (projection and concatenation discriminators) and the multi-style StarGAN. Labelled fake
data, every label verified in the ONNX export."""

from __future__ import annotations

from gantransfer.testing import conformance_tests

TINY_DCGAN = {"image_size": 16, "ngf": 4, "ndf": 4, "nz": 8, "labels": ["cat", "dog", "owl"]}

test_conditional_dcgan = conformance_tests("dcgan", TINY_DCGAN)

test_conditional_dcgan_concat = conformance_tests(
    "dcgan", {**TINY_DCGAN, "d_conditioning": "concat", "g_conditioning": "embedding"})

TINY_STARGAN = {"labels": ["monet", "photo", "ukiyoe"], "ngf": 4, "ndf": 4, "n_layers_D": 2,
                "load_size": 16, "crop_size": 16}

test_stargan = conformance_tests("stargan", TINY_STARGAN)

test_stargan_onehot = conformance_tests("stargan", {**TINY_STARGAN, "style_input": "onehot"})
