# The two README commands: `make book` and `make test`. Both create .venv on first use.
# `make publish` builds the book and pushes its HTML to the gh-pages branch of REMOTE (origin).
PY := .venv/bin/python
PROFILE ?= smoke
DEVICE ?= auto
JOBS ?=
REMOTE ?= origin

.venv/done: pyproject.toml constraints.txt requirements.lock
	python3 -m venv .venv
	$(PY) -m pip install -q -c constraints.txt -c requirements.lock -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: .venv/done

book: setup
	$(PY) -m srnn.runner --profile $(PROFILE) --device $(DEVICE) $(if $(JOBS),--jobs $(JOBS))
	$(PY) -m srnn.publish build

publish: book
	$(PY) -m srnn.publish push --remote $(REMOTE)

test: setup
	$(PY) -m ruff check srnn tests scripts book/notebooks benchmarks
	$(PY) -m pytest -q

# Resolve the book environment again (new releases) into requirements.lock.
lock:
	$(PY) -m pip install -q --dry-run --ignore-installed --report .venv/report.json -c constraints.txt ".[dev]"
	$(PY) -c "import json; r = json.load(open('.venv/report.json')); \
	pins = sorted(f\"{i['metadata']['name'].lower()}=={i['metadata']['version']}\" for i in r['install']); \
	head = [l for l in open('requirements.lock') if l.startswith('#')]; \
	open('requirements.lock', 'w').writelines(head + [p + '\n' for p in pins if not p.startswith(('torch==', 'srnn=='))])"

.PHONY: setup book publish test lock
