#!/usr/bin/env bash
# Nothing to stop: engines/ only installs HAProxy.
exit 0
