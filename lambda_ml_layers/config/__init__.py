"""The project's settings, read once at the edge into frozen dataclasses and checked: layers/*.toml
(and their [prune], [upstream_tests] and trace manifests), locks, strip rules, infra/template.yaml,
infra/samconfig.toml and stages.toml. Imports only core/."""
