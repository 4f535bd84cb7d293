# Two commands on a fresh machine:  `make demo`  and  `make test`. Both install what they need first.
SHELL := /bin/bash
# onnxruntime-node's postinstall downloads CUDA files from outside; the CPU build ships in the package.
export ONNXRUNTIME_NODE_INSTALL := skip

.PHONY: demo test setup tools models bench build clean

node_modules/.recaption-installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## Temporal CLI + fake-gcs-server, built once per machine with `go install` into ~/.cache/recaption/bin.
tools: node_modules/.recaption-installed
	npx --no-install tsx infra/install-tools.ts

models: node_modules/.recaption-installed
	npx --no-install tsx lib/models/tiny/generate.ts --out .cache/models

setup: node_modules/.recaption-installed tools models

demo: setup
	node bin/recaption.js demo

test: setup
	npm test

bench: setup
	npm run bench

build: node_modules/.recaption-installed
	npx --no-install tsc -p tsconfig.json

clean:
	rm -rf dist .cache recaption-demo
