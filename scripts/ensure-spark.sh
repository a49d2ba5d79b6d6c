#!/usr/bin/env bash
# Make sure the spark engine's tests can run: a Java runtime (17 or later, for PySpark 4) and the PostgreSQL JDBC
# driver jar at /usr/share/java/postgresql.jar (setting spark.jdbc_jar). PySpark itself comes with the `test` extra.
# Quiet when both are there. As root on Debian/Ubuntu, installs the packages `default-jre-headless` and
# `libpostgresql-jdbc-java` with apt-get; otherwise prints what to install and exits 1.
set -euo pipefail

JAR=/usr/share/java/postgresql.jar
missing=()
if ! command -v java >/dev/null 2>&1; then
    missing+=(default-jre-headless)
fi
if [[ ! -f "$JAR" ]]; then
    missing+=(libpostgresql-jdbc-java)
fi
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "spark engine tests need the Debian package(s) ${missing[*]} (sudo apt-get install ${missing[*]})." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v java >/dev/null && [[ -f "$JAR" ]]
echo "installed: ${missing[*]}"
