"""What tests built layers: `nox -s layer_tests` (layer_checks, layer_test_plan), the map of which
layer provides each module (module_map), and the libraries' own suites (upstream_tests/)."""
