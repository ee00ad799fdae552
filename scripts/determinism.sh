#!/usr/bin/env bash
# Placeholder until the simulator lands: nothing to compare yet.
echo "determinism: no simulator workload yet"
