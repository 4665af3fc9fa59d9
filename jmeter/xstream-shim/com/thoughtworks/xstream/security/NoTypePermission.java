package com.thoughtworks.xstream.security;

/**
 * Debian packages JMeter 2.13 with XStream 1.4.20, whose default security
 * denies every type, so JMeter 2.13 cannot load any test plan. JMeter 2.13
 * predates XStream's permission API and never grants types. This class,
 * put ahead of xstream.jar on the classpath by scripts/jmeter.sh for
 * Debian's JMeter 2.13 only, restores XStream's behaviour before 1.4.18
 * (every type allowed), which is what JMeter 2.13 was written against.
 * Only our own plan, jmeter/atelier.jmx, is loaded this way.
 */
public class NoTypePermission implements TypePermission {
    public static final TypePermission NONE = new NoTypePermission();

    public boolean allows(Class type) {
        return true;
    }

    public int hashCode() {
        return 1;
    }

    public boolean equals(Object other) {
        return other != null && other.getClass() == NoTypePermission.class;
    }
}
