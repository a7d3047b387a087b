#!/bin/bash
# demo-mariadb: the broker's own upstream account, least privilege (docs/operations.md): it reads and
# writes the shop's tables and may read what its views are, nothing else. Sourced by the mariadb image's
# entrypoint (docker_process_sql is its helper); the password comes from JIT_UPSTREAM_PASSWORD.
pw=${JIT_UPSTREAM_PASSWORD//\'/\'\'}
docker_process_sql --database=mysql <<SQL
CREATE USER 'jit_broker'@'%' IDENTIFIED BY '${pw}';
GRANT SELECT, INSERT, UPDATE, DELETE, SHOW VIEW ON shop.* TO 'jit_broker'@'%';
SQL
