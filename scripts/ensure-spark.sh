#!/usr/bin/env bash
# Make sure the spark engine's tests can run: a Java runtime (17 or later, for PySpark 4) and the PostgreSQL JDBC
# driver jar at /usr/share/java/postgresql.jar (setting spark.jdbc_jar). PySpark itself comes with the `test` extra.
# Quiet when both are there. As root on Debian/Ubuntu, installs the packages `default-jre-headless` and
# `libpostgresql-jdbc-java` with apt-get; otherwise prints what to install and exits 1.
set -euo pipefail

JAR=/usr/share/java/postgresql.jar
missing=()
java_major() {  # the major version of the java on the PATH (0 when there is none)
    command -v java >/dev/null 2>&1 || { echo 0; return; }
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}
if [[ "$(java_major)" -lt 17 ]]; then
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
[[ "$(java_major)" -ge 17 && -f "$JAR" ]]
echo "installed: ${missing[*]}"
