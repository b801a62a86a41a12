# The course in a few short targets. `make help` lists them.
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
COURSE_STAMP := $(VENV)/.installed-course
PROFILE ?= smoke
ARGS    ?=
# Jupyter refuses to run as root (containers, some cloud machines) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: help venv course test rehearsal smoke slides repo lint format strip clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Developers and CI get the test tools; learners (`make course`) only what the notebooks need.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP) $(COURSE_STAMP)

# In a room without PyPI an installed course still starts (pip's failure is reported, not fatal).
$(COURSE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if $(BIN)/python -m pip install --quiet -e ".[course]"; then touch $(COURSE_STAMP); else \
		$(BIN)/python -c "import course_utils, jupyterlab" \
		&& echo "pip could not install; starting the course already installed in $(VENV)"; fi

venv: $(STAMP)  ## create or update .venv with the test tools (runs by itself when needed)

course: $(COURSE_STAMP)  ## open JupyterLab on notebooks/ (headless: make course ARGS=--no-browser)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(ARGS)

test: $(STAMP)  ## lint, unit tests, and every notebook under nbval in the smoke profile
	$(BIN)/ruff check .
	.ci/ensure-browser
	COURSE_PROFILE=smoke MPLBACKEND=Agg $(BIN)/pytest tests notebooks --ignore=tests/rehearsal \
		--nbval-lax --nbval-current-env --durations=10 $(ARGS)

# The fixtures' checksums stand in for the published ones only here, through a sitecustomize on
# PYTHONPATH (tests/rehearsal/site); course_utils itself has no way to override a checksum.
rehearsal: $(STAMP)  ## every notebook and solution through real-layout archives on a local mirror
	COURSE_REHEARSAL_CHECKSUMS=$(CURDIR)/build/rehearsal/mirror/checksums.json \
	PYTHONPATH=$(CURDIR)/tests/rehearsal/site MPLBACKEND=Agg \
		$(BIN)/pytest tests/rehearsal -p no:cacheprovider $(ARGS)

smoke: $(STAMP)  ## run every notebook headlessly into build/ (make smoke PROFILE=laptop for another)
	@mkdir -p build
	@for nb in $(NOTEBOOKS); do \
		start=$$(date +%s); \
		COURSE_PROFILE=$(PROFILE) $(BIN)/jupyter nbconvert --to notebook --execute \
			--output-dir build --log-level WARN "$$nb" || exit 1; \
		echo "$$nb: $$(( $$(date +%s) - start )) s in profile $(PROFILE)"; \
	done

slides: $(STAMP)  ## build every deck into build/slides/ (self-contained HTML, works offline)
	$(BIN)/python slides/build.py --out build/slides

repo:  ## after forking: point every Colab badge and install line at REPO=owner/name
	@echo "$(REPO)" | grep -Eq '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$$' \
		|| { echo "usage: make repo REPO=owner/name"; exit 1; }
	@set -e; \
	old=$$(sed -n 's/^REPO = "\(.*\)"$$/\1/p' course_utils/config.py); \
	test -n "$$old" || { echo "course_utils/config.py has no line REPO = \"owner/name\""; exit 1; }; \
	for f in $$(grep -rlF "$$old" course_utils/config.py README.md INSTRUCTOR.md notebooks); do \
		OLD="$$old" NEW="$(REPO)" perl -pi -e 's/\Q$$ENV{OLD}\E/$$ENV{NEW}/g' "$$f"; \
	done; \
	echo "Colab badges and install lines now point at github.com/$(REPO) (was $$old)"

lint: $(STAMP)  ## ruff lint and format check (code and notebooks)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## ruff format, and strip notebook outputs
	$(BIN)/ruff format .
	$(BIN)/nbstripout notebooks/*.ipynb notebooks/solutions/*.ipynb

strip: $(STAMP)  ## strip outputs from the notebooks before committing
	$(BIN)/nbstripout notebooks/*.ipynb notebooks/solutions/*.ipynb

clean:  ## remove build outputs and caches (keeps .venv and data/)
	rm -rf build .pytest_cache .ruff_cache
	find . -name __pycache__ -o -name .ipynb_checkpoints | xargs rm -rf
