"""gantransfer's conformance suite over this plugin: `pytest examples/gantransfer-pix2pix/tests`."""

from gantransfer.testing import conformance_tests

test_pix2pix_conformance = conformance_tests("pix2pix", {
    "netG": "resnet_6blocks", "ngf": 4, "ndf": 4, "n_layers_D": 2, "load_size": 16,
    "crop_size": 16})
