# The two README commands: `make book` and `make test`. Both create .venv on first use.
PY := .venv/bin/python
PROFILE ?= smoke
DEVICE ?= auto

.venv/done: pyproject.toml constraints.txt
	python3 -m venv .venv
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: .venv/done

book: setup
	$(PY) -m srnn.runner --profile $(PROFILE) --device $(DEVICE)
	.venv/bin/jupyter-book build book/ -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/book/_build/html/index.html"

test: setup
	$(PY) -m ruff check srnn tests book/notebooks benchmarks
	$(PY) -m pytest -q

.PHONY: setup book test
