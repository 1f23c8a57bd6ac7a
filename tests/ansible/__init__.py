"""Tests of the Ansible deployment (ansible/): lint, syntax, and real runs against this machine."""
