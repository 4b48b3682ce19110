# automix_local — the two commands a newcomer needs:  make run   and   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# llama-cpp-python compiles llama.cpp natively (right for your CPU). On some x86-64 Linux VMs the
# native build emits AMX instructions the VM does not enable and dies with "Illegal instruction":
# keep the native build minus AMX. GPU users override CMAKE_ARGS, e.g.
#   make install CMAKE_ARGS="-DGGML_CUDA=on"     (NVIDIA)
#   make install CMAKE_ARGS="-DGGML_METAL=on"    (Apple Silicon; Metal is the default there)
ifeq ($(shell uname -s)-$(shell uname -m),Linux-x86_64)
LLAMA_CFLAGS ?= -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif
CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
TEST_HOME := $(CURDIR)/.cache/test-home
STAMP := $(VENV)/.installed

.PHONY: install rebuild-llama models run test test-model lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" CMAKE_ARGS="$(CMAKE_ARGS)" \
		$(BIN)/python -m pip install -e '.[test]'
	$(BIN)/python -c "import llama_cpp; llama_cpp.llama_backend_init()" \
		|| { echo "llama-cpp-python does not load on this machine; see DEVELOPERS.md (Building llama-cpp-python)"; exit 1; }
	touch $@

install: $(STAMP)

# Rebuild llama-cpp-python with other flags in an existing venv, e.g. for a GPU:
#   make rebuild-llama CMAKE_ARGS="-DGGML_CUDA=on"
rebuild-llama: install
	CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" CMAKE_ARGS="$(CMAKE_ARGS)" \
		$(BIN)/python -m pip install --force-reinstall --no-deps --no-cache-dir "llama-cpp-python==0.3.36"

models: install
	$(BIN)/automix-local models pull

run: models
	$(BIN)/automix-local --context automix_local/data/sample.md

test-model: install
	AUTOMIX_LOCAL_HOME=$(TEST_HOME) $(BIN)/automix-local --config tests/data/test-models.toml models pull
	AUTOMIX_LOCAL_HOME=$(TEST_HOME) $(BIN)/automix-local --config automix_local/data/models.toml models pull small
	# the [embedding] model of the packaged models.toml (nomic-embed-text-v1.5, 274 MB)
	AUTOMIX_LOCAL_HOME=$(TEST_HOME) $(BIN)/automix-local --config automix_local/data/models.toml models pull embedding
	# the [ner] model (spaCy en_core_web_md, 33 MB): redact = ["names"]
	AUTOMIX_LOCAL_HOME=$(TEST_HOME) $(BIN)/automix-local --config automix_local/data/models.toml models pull ner

test: test-model
	AUTOMIX_TEST_HOME=$(TEST_HOME) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check automix_local tests bench
	$(BIN)/ruff format --check automix_local tests bench
	$(BIN)/mypy automix_local

clean:
	rm -rf $(VENV) .cache .pytest_cache
