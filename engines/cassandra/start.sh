#!/usr/bin/env bash
# Fetches (once), configures, starts and waits for a single-node Cassandra 5.0 (Java 17).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

HERE="$ENGINES_DIR/cassandra"
RUN="$ENGINES_RUN/cassandra"
LIBS="$ENGINES_CACHE/cassandra/libs-$(content_key "$HERE/pom.xml")"
LOG="$RUN/cassandra.log"
HEAP="${PARLEY_CASSANDRA_HEAP:-2G}"

skip_if_running cassandra "$CASSANDRA_PORT"

[[ -x "$JAVA" ]] || die "cassandra: Java 17 not found (set PARLEY_JAVA)"
java_major="$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
[[ "$java_major" == 17 ]] || log "cassandra: WARNING: Java $java_major (5.0 supports 11 and 17, not 24+)"
maven_libs "$HERE/pom.xml" "$LIBS"
JAMM="$(ls "$LIBS"/jamm-*.jar | head -1)"
[[ -f "$JAMM" ]] || die "cassandra: jamm jar missing from $LIBS"

mkdir -p "$RUN/data" "$RUN/logs" "$RUN/triggers"
render "$HERE/cassandra.yaml.tmpl" "$RUN/cassandra.yaml" \
  "CASSANDRA_PORT=$CASSANDRA_PORT" "CASSANDRA_STORAGE_PORT=$CASSANDRA_STORAGE_PORT"

require_free_port cassandra "$CASSANDRA_PORT"
require_free_port cassandra "$CASSANDRA_STORAGE_PORT"

# conf/jvm-server.options + conf/jvm17-server.options of Cassandra 5.0 (the parts that matter).
JVM_OPTS=(
  -ea "-Xms$HEAP" "-Xmx$HEAP" -Xss256k -XX:+UseG1GC -XX:MaxGCPauseMillis=300
  -XX:+UseTLAB -XX:+ResizeTLAB -XX:+PerfDisableSharedMem -XX:StringTableSize=1000003
  -XX:+ExitOnOutOfMemoryError
  -Djava.net.preferIPv4Stack=true
  "-javaagent:$JAMM"
  -Djdk.attach.allowAttachSelf=true -Dio.netty.tryReflectionSetAccessible=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.management/com.sun.jmx.remote.security=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  "-Dcassandra.config=file://$RUN/cassandra.yaml"
  "-Dcassandra.storagedir=$RUN/data"
  "-Dcassandra.logdir=$RUN/logs"
  "-Dcassandra.triggers_dir=$RUN/triggers"
  -Dcassandra-foreground=yes
  "-Dlogback.configurationFile=file://$HERE/logback.xml"
  -Dcassandra.skip_wait_for_gossip_to_settle=0
  -Dcassandra.superuser_setup_delay_ms=0
  -cp "$LIBS/*"
)
# No -Dcassandra.jmx.*.port: JMX stays off, so nothing listens on 7199.

t0="$(now)"
echo "---- start $(date -Is)" >>"$LOG"
spawn cassandra "$LOG" "$JAVA" "${JVM_OPTS[@]}" org.apache.cassandra.service.CassandraDaemon
log "cassandra: started pid $(cat "$(pidfile cassandra)"), waiting for 127.0.0.1:$CASSANDRA_PORT"
wait_until cassandra "${PARLEY_CASSANDRA_TIMEOUT:-180}" "$HERE/check.sh" || die "cassandra: not ready"
secs="$(elapsed "$t0")"
echo "$secs" >"$RUN/ready-seconds"
log "cassandra: ready on 127.0.0.1:$CASSANDRA_PORT in ${secs}s"
