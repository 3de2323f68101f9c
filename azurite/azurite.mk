# Azurite, Azure Storage's emulator, for the local stack's Azure Blob service (`ossnap-local --azure`,
# the tests that restore from Azure): from the npm registry into azurite/node_modules, run on the
# system's Node (20 or newer). The stamp lies inside node_modules, so removing that directory
# reinstalls.

.PHONY: azure-tools

azure-tools: azurite/node_modules/.installed

azurite/node_modules/.installed: azurite/package.json
	cd azurite && npm install --no-audit --no-fund --no-package-lock --loglevel=error
	touch $@
