#!/bin/sh
# t/2500 through mf-qmail-queue-client and a resident mf-bridge
# qmail-server: the same mail, the same outcomes.
QM_FRONT=server exec sh "$(dirname "$0")/2500-qmail-queue.t"
