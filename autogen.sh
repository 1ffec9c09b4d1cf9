#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Generates ./configure from configure.ac (needs autoconf, automake, pkg-config).
set -e
cd "$(dirname "$0")"
autoreconf --force --install
