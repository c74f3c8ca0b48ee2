# Two commands do all the set-up: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)

STAGE  ?= dev
# e.g. PROVISION_FLAGS=--enable-stream: turn on the stream of every existing audited table that has none
PROVISION_FLAGS ?=

.PHONY: venv test lint demo run bench provision package terraform clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed" or 0)'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .   # the config-audit command
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m infra.policy --check --stage dev
	$(PY) -m infra.cloudformation --check
	$(PY) -m infra.terraform --check

test: lint
	$(PY) -m pytest -q

demo: venv
	$(PY) -m local.demo

run: venv
	$(PY) -m local.run

bench: venv
	$(PY) -m bench.run

provision: venv
	$(PY) -m infra.provision --stage $(STAGE) $(PROVISION_FLAGS)

package: venv
	rm -rf dist/cloudformation
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage $(STAGE) --merge-template infra/cloudformation/merge.json dist/cloudformation
	$(VENV)/bin/cfn-lint dist/cloudformation/sam.json

terraform: venv
	rm -rf dist/terraform
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage $(STAGE) --pkg-format terraform dist/terraform
	cp infra/terraform/*.tf.json dist/terraform/

clean:
	rm -rf $(VENV) dist .mypy_cache .ruff_cache .pytest_cache
