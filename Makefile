# Two commands for a newcomer: `make run` and `make test`. Each builds the virtual environment
# (.venv) and installs the project into it first, so a machine with only Python 3.11+ and pip is enough.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run replay test format bench clean browser screenshots

# editable_mode=compat: the project is a plain path entry (no import hook), so commands start fast.
$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	@touch $(STAMP)

# The project's bytecode, as pip writes it for a station installed from a wheel: a command then
# starts without compiling its modules (PYTHONDONTWRITEBYTECODE, where set, stops Python from
# writing it itself). Up-to-date files are skipped, so this costs nothing when nothing changed.
BYTECODE := $(BIN)/python -m compileall -q controller drivers firmware_sim server

run: $(STAMP)
	@$(BYTECODE)
	$(BIN)/charge-station demo

replay: $(STAMP)
	@$(BYTECODE)
	$(BIN)/charge-station replay --config examples/station.toml examples/day.txt

# The browser tests drive Debian's chromium and chromedriver (with a Chinese font, for the
# pages' Chinese): installed here when missing.
BROWSER_PACKAGES := chromium chromium-driver fonts-wqy-microhei
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	  test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; }

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# docs/web.md's screenshots, taken by the browser tests.
screenshots: $(STAMP) browser
	CS_SCREENSHOTS=$(CURDIR)/docs/web $(BIN)/python -m pytest tests/web -q

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/replay_day.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
