//go:build !edge

package main

// platformCommands are the commands of the platform and its tools. A
// build with -tags edge leaves them out: the binary for a gateway on a
// Raspberry Pi Zero then holds no platform, store or database driver.
func platformCommands() []command {
	return []command{
		{"demo", "everything on one machine: platform, simulated pilot sites, test cases, dashboard", runDemo},
		{"serve", "run the platform (the core data management platform)", runServe},
		{"keys", "manage API keys: keys create|list|revoke", runKeys},
		{"upload", "send a CSV or NDJSON batch file to the platform", runUpload},
		{"bench", "measure speed and footprint: bench ingest|gateway|ocpp", runBench},
		{"itc", "integration test cases against a platform: itc list|run", runITC},
	}
}
