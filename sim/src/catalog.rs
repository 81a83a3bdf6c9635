//! The fixed facts of the simulated company: offices and their time zones, VPN regions, user
//! groups, networks with their connectors and hosts, device kinds, accounts and disconnect
//! reasons.
//!
//! Kept as plain tables so that the world generator reads like a description of the company and
//! tests can refer to the same names.

/// VPN regions the tenant's users connect to, one per office plus the ones offices share.
pub(crate) const REGIONS: [&str; 9] = [
    "us-east-1",
    "us-west-1",
    "sa-east-1",
    "eu-west-2",
    "eu-central-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-northeast-1",
    "ap-southeast-2",
];

/// Where a VPN region is, as `GET /api/v1/regions` describes it (the spec's `VpnRegionResponse`).
pub(crate) struct RegionFacts {
    /// `regionName`: the city of the region's servers.
    pub(crate) name: &'static str,
    /// `country`.
    pub(crate) country: &'static str,
    /// `countryIso`: ISO 3166-1 alpha-2.
    pub(crate) country_iso: &'static str,
    /// `continent`.
    pub(crate) continent: &'static str,
}

/// Facts of each of [`REGIONS`], in the same order.
pub(crate) const REGION_FACTS: [RegionFacts; 9] = [
    RegionFacts {
        name: "Ashburn",
        country: "United States",
        country_iso: "US",
        continent: "North America",
    },
    RegionFacts {
        name: "San Jose",
        country: "United States",
        country_iso: "US",
        continent: "North America",
    },
    RegionFacts {
        name: "Sao Paulo",
        country: "Brazil",
        country_iso: "BR",
        continent: "South America",
    },
    RegionFacts {
        name: "London",
        country: "United Kingdom",
        country_iso: "GB",
        continent: "Europe",
    },
    RegionFacts {
        name: "Frankfurt",
        country: "Germany",
        country_iso: "DE",
        continent: "Europe",
    },
    RegionFacts {
        name: "Mumbai",
        country: "India",
        country_iso: "IN",
        continent: "Asia",
    },
    RegionFacts {
        name: "Singapore",
        country: "Singapore",
        country_iso: "SG",
        continent: "Asia",
    },
    RegionFacts {
        name: "Tokyo",
        country: "Japan",
        country_iso: "JP",
        continent: "Asia",
    },
    RegionFacts {
        name: "Sydney",
        country: "Australia",
        country_iso: "AU",
        continent: "Oceania",
    },
];

/// An office: where users sit, their time zone and the VPN region they normally use.
pub(crate) struct Office {
    /// Offset of local time from UTC, in minutes (standard time; the world has no DST).
    pub(crate) utc_offset_minutes: i64,
    /// Index into [`REGIONS`].
    pub(crate) region: usize,
    /// Share of the company's users who work here.
    pub(crate) weight: f64,
}

/// The offices, spread so that some are in working hours at any hour of the day.
pub(crate) const OFFICES: [Office; 9] = [
    // New York
    Office {
        utc_offset_minutes: -300,
        region: 0,
        weight: 0.18,
    },
    // San Francisco
    Office {
        utc_offset_minutes: -480,
        region: 1,
        weight: 0.12,
    },
    // Sao Paulo
    Office {
        utc_offset_minutes: -180,
        region: 2,
        weight: 0.06,
    },
    // London
    Office {
        utc_offset_minutes: 0,
        region: 3,
        weight: 0.12,
    },
    // Berlin
    Office {
        utc_offset_minutes: 60,
        region: 4,
        weight: 0.16,
    },
    // Bangalore
    Office {
        utc_offset_minutes: 330,
        region: 5,
        weight: 0.12,
    },
    // Singapore
    Office {
        utc_offset_minutes: 480,
        region: 6,
        weight: 0.09,
    },
    // Tokyo
    Office {
        utc_offset_minutes: 540,
        region: 7,
        weight: 0.08,
    },
    // Sydney
    Office {
        utc_offset_minutes: 600,
        region: 8,
        weight: 0.07,
    },
];

/// A user group and the habits of its members.
pub(crate) struct Group {
    /// `userGroup` as the API reports it.
    pub(crate) name: &'static str,
    /// Share of the company's users in this group.
    pub(crate) weight: f64,
    /// Probability of working on a weekday.
    pub(crate) weekday_presence: f64,
    /// Probability of working on a weekend day.
    pub(crate) weekend_presence: f64,
    /// Probability that a user keeps a device connected around the clock.
    pub(crate) always_on: f64,
    /// Probability that a connection attempt fails before it succeeds.
    pub(crate) attempt_failure: f64,
    /// Probability that a user also connects from a phone.
    pub(crate) phone: f64,
    /// Weights of [`NETWORKS`] for this group's sessions.
    pub(crate) networks: [f64; 7],
    /// Weights of laptop OS types: Windows, Mac, Linux, Chrome OS.
    pub(crate) laptop_os: [f64; 4],
    /// Median traffic of a session, bytes per second to the client.
    pub(crate) median_rate: f64,
    /// Weights of [`AUTH_TYPES`] for this group's accounts.
    pub(crate) auth_types: [f64; 5],
    /// Probability that a member is an administrator of the tenant.
    pub(crate) admin: f64,
    /// Probability that an account is suspended (by an administrator, or by the identity
    /// provider for accounts that come from one).
    pub(crate) suspended: f64,
    /// Probability that an account was invited and has not signed in yet.
    pub(crate) invited: f64,
    /// The group's `connectAuth`: whether its members must authenticate on every connection.
    pub(crate) connect_auth: &'static str,
}

/// User groups.
pub(crate) const GROUPS: [Group; 7] = [
    Group {
        name: "Engineering",
        weight: 0.34,
        weekday_presence: 0.9,
        weekend_presence: 0.08,
        always_on: 0.04,
        attempt_failure: 0.03,
        phone: 0.3,
        networks: [0.05, 0.05, 0.03, 0.45, 0.25, 0.12, 0.05],
        laptop_os: [0.2, 0.5, 0.3, 0.0],
        median_rate: 12_000.0,
        auth_types: [0.06, 0.94, 0.0, 0.0, 0.0],
        admin: 0.02,
        suspended: 0.02,
        invited: 0.04,
        connect_auth: "ON_PRIOR_AUTH",
    },
    Group {
        name: "Sales",
        weight: 0.16,
        weekday_presence: 0.85,
        weekend_presence: 0.04,
        always_on: 0.04,
        attempt_failure: 0.035,
        phone: 0.7,
        networks: [0.7, 0.0, 0.0, 0.1, 0.0, 0.0, 0.2],
        laptop_os: [0.6, 0.35, 0.0, 0.05],
        median_rate: 4_000.0,
        auth_types: [0.05, 0.95, 0.0, 0.0, 0.0],
        admin: 0.01,
        suspended: 0.03,
        invited: 0.05,
        connect_auth: "ON_PRIOR_AUTH",
    },
    Group {
        name: "Support",
        weight: 0.14,
        weekday_presence: 0.9,
        weekend_presence: 0.15,
        always_on: 0.08,
        attempt_failure: 0.03,
        phone: 0.4,
        networks: [0.35, 0.0, 0.0, 0.45, 0.1, 0.0, 0.1],
        laptop_os: [0.65, 0.3, 0.05, 0.0],
        median_rate: 5_000.0,
        auth_types: [0.05, 0.95, 0.0, 0.0, 0.0],
        admin: 0.01,
        suspended: 0.03,
        invited: 0.04,
        connect_auth: "ON_PRIOR_AUTH",
    },
    Group {
        name: "Finance",
        weight: 0.07,
        weekday_presence: 0.92,
        weekend_presence: 0.03,
        always_on: 0.02,
        attempt_failure: 0.03,
        phone: 0.3,
        networks: [0.85, 0.1, 0.05, 0.0, 0.0, 0.0, 0.0],
        laptop_os: [0.75, 0.25, 0.0, 0.0],
        median_rate: 3_000.0,
        auth_types: [0.02, 0.9, 0.08, 0.0, 0.0],
        admin: 0.01,
        suspended: 0.02,
        invited: 0.03,
        connect_auth: "EVERY_TIME",
    },
    Group {
        name: "Contractors",
        weight: 0.12,
        weekday_presence: 0.7,
        weekend_presence: 0.06,
        always_on: 0.02,
        attempt_failure: 0.09,
        phone: 0.2,
        networks: [0.05, 0.0, 0.0, 0.2, 0.55, 0.2, 0.0],
        laptop_os: [0.5, 0.3, 0.2, 0.0],
        median_rate: 8_000.0,
        auth_types: [0.7, 0.3, 0.0, 0.0, 0.0],
        admin: 0.0,
        suspended: 0.1,
        invited: 0.08,
        connect_auth: "EVERY_TIME",
    },
    Group {
        name: "IT Admins",
        weight: 0.05,
        weekday_presence: 0.95,
        weekend_presence: 0.25,
        always_on: 0.5,
        attempt_failure: 0.02,
        phone: 0.6,
        networks: [0.2, 0.25, 0.2, 0.2, 0.05, 0.05, 0.05],
        laptop_os: [0.4, 0.2, 0.4, 0.0],
        median_rate: 15_000.0,
        auth_types: [0.1, 0.8, 0.1, 0.0, 0.0],
        admin: 0.8,
        suspended: 0.01,
        invited: 0.02,
        connect_auth: "EVERY_TIME",
    },
    Group {
        name: "Marketing",
        weight: 0.12,
        weekday_presence: 0.85,
        weekend_presence: 0.04,
        always_on: 0.03,
        attempt_failure: 0.035,
        phone: 0.5,
        networks: [0.75, 0.0, 0.0, 0.1, 0.0, 0.0, 0.15],
        laptop_os: [0.45, 0.45, 0.0, 0.1],
        median_rate: 6_000.0,
        auth_types: [0.05, 0.95, 0.0, 0.0, 0.0],
        admin: 0.01,
        suspended: 0.03,
        invited: 0.05,
        connect_auth: "ON_PRIOR_AUTH",
    },
];

/// A network of the tenant, reached through connectors in some regions.
pub(crate) struct Network {
    /// `networkName`.
    pub(crate) name: &'static str,
    /// Connectors: name and index into [`REGIONS`].
    pub(crate) connectors: &'static [(&'static str, usize)],
    /// Hosts behind this network (`hostName`).
    pub(crate) hosts: &'static [&'static str],
}

/// Networks. Group weights in [`Group::networks`] follow this order.
pub(crate) const NETWORKS: [Network; 7] = [
    Network {
        name: "headquarters",
        connectors: &[("hq-nyc-connector", 0), ("hq-berlin-connector", 4)],
        hosts: &["crm", "erp", "intranet", "file-server", "print-server"],
    },
    Network {
        name: "dc-frankfurt",
        connectors: &[("dc-fra-connector-a", 4), ("dc-fra-connector-b", 4)],
        hosts: &["db-primary", "db-replica", "backup-01", "ldap-eu"],
    },
    Network {
        name: "dc-virginia",
        connectors: &[("dc-iad-connector", 0)],
        hosts: &["db-us-primary", "backup-us", "ldap-us"],
    },
    Network {
        name: "aws-prod",
        connectors: &[
            ("aws-prod-use1-connector", 0),
            ("aws-prod-euc1-connector", 4),
            ("aws-prod-apse1-connector", 6),
        ],
        hosts: &[
            "api-gateway",
            "k8s-admin",
            "grafana",
            "kibana",
            "bastion-prod",
        ],
    },
    Network {
        name: "aws-staging",
        connectors: &[("aws-staging-usw1-connector", 1)],
        hosts: &["staging-api", "ci-runner", "bastion-staging"],
    },
    Network {
        name: "lab",
        connectors: &[("lab-london-connector", 3)],
        hosts: &["lab-switch", "test-bench-01", "test-bench-02"],
    },
    Network {
        name: "office-apac",
        connectors: &[
            ("apac-singapore-connector", 6),
            ("apac-tokyo-connector", 7),
            ("apac-sydney-connector", 8),
        ],
        hosts: &["apac-files", "apac-printers"],
    },
];

/// `authType` values of accounts, in the order of [`Group::auth_types`]. The company signs its
/// staff in through its SAML identity provider, keeps local (`INTERNAL`) accounts for most
/// contractors and a few others, and still has some LDAP accounts from before the move to SAML.
pub(crate) const AUTH_TYPES: [&str; 5] = ["INTERNAL", "SAML", "LDAP", "GOOGLE", "MICROSOFT"];

/// The catalog's connectors: one per connector of a network, and one per host (every host of
/// the catalog runs a host connector of its own).
pub(crate) const fn connector_count() -> u32 {
    let mut count = 0;
    let mut i = 0;
    while i < NETWORKS.len() {
        count += NETWORKS[i].connectors.len() + NETWORKS[i].hosts.len();
        i += 1;
    }
    count as u32
}

/// `osType` values of laptops, in the order of [`Group::laptop_os`].
pub(crate) const LAPTOP_OS: [&str; 4] = ["WINDOWS", "MAC", "LINUX", "CHROME_OS"];

/// `osType` values of phones.
pub(crate) const PHONE_OS: [&str; 2] = ["IOS", "ANDROID"];

/// Plausible `osVersion` values per `osType`.
pub(crate) fn os_versions(os_type: &str) -> &'static [&'static str] {
    match os_type {
        "WINDOWS" => &["10.0.19045", "10.0.22631", "10.0.26100"],
        "MAC" => &["13.6.7", "14.5", "14.6.1", "15.1"],
        "LINUX" => &["Ubuntu 22.04", "Ubuntu 24.04", "Fedora 40", "Debian 12"],
        "CHROME_OS" => &["126.0.6478", "128.0.6613"],
        "IOS" => &["17.5.1", "17.6", "18.1"],
        _ => &["13", "14", "15"],
    }
}

/// Transport protocols with their shares of sessions.
pub(crate) const PROTOCOLS: [(&str, f64); 3] = [("UDP", 0.72), ("TCP", 0.22), ("WIREGUARD", 0.06)];

/// How a session ended: `disconnectReason`, its description, and whether the session FAILED.
pub(crate) struct Reason {
    /// `disconnectReason`.
    pub(crate) code: &'static str,
    /// `disconnectReasonDescription`.
    pub(crate) description: &'static str,
    /// True for reasons that make the session FAILED rather than COMPLETED.
    pub(crate) failed: bool,
}

/// Every reason the world uses; the constants below index it.
pub(crate) const REASONS: [Reason; 14] = [
    Reason {
        code: "USER_DISCONNECT",
        description: "The user disconnected the client",
        failed: false,
    },
    Reason {
        code: "IDLE_TIMEOUT",
        description: "The session was closed after a period of inactivity",
        failed: false,
    },
    Reason {
        code: "CLIENT_EXIT",
        description: "The client application exited or the device went to sleep",
        failed: false,
    },
    Reason {
        code: "NETWORK_CHANGE",
        description: "The client's network changed and it reconnected",
        failed: false,
    },
    Reason {
        code: "SESSION_TIMEOUT",
        description: "The maximum session duration was reached",
        failed: false,
    },
    Reason {
        code: "PING_TIMEOUT",
        description: "No keepalive was received from the client",
        failed: false,
    },
    Reason {
        code: "CONNECTION_LOST",
        description: "The VPN region stopped answering the client",
        failed: false,
    },
    Reason {
        code: "AUTH_FAILED",
        description: "Authentication failed: invalid credentials",
        failed: true,
    },
    Reason {
        code: "TLS_HANDSHAKE_FAILED",
        description: "The TLS handshake with the client failed",
        failed: true,
    },
    Reason {
        code: "TIMEOUT",
        description: "The connection attempt timed out",
        failed: true,
    },
    Reason {
        code: "DEVICE_NOT_ALLOWED",
        description: "The device is not allowed by the access policy",
        failed: true,
    },
    Reason {
        code: "POSTURE_CHECK_FAILED",
        description: "The device did not pass the posture check",
        failed: true,
    },
    Reason {
        code: "MFA_FAILED",
        description: "Multi-factor authentication was not completed",
        failed: true,
    },
    Reason {
        code: "USER_DELETED",
        description: "The user was deleted and disconnected",
        failed: false,
    },
];

/// Index of `USER_DISCONNECT` in [`REASONS`].
pub(crate) const USER_DISCONNECT: u8 = 0;
/// Index of `IDLE_TIMEOUT` in [`REASONS`].
pub(crate) const IDLE_TIMEOUT: u8 = 1;
/// Index of `CLIENT_EXIT` in [`REASONS`].
pub(crate) const CLIENT_EXIT: u8 = 2;
/// Index of `NETWORK_CHANGE` in [`REASONS`].
pub(crate) const NETWORK_CHANGE: u8 = 3;
/// Index of `SESSION_TIMEOUT` in [`REASONS`].
pub(crate) const SESSION_TIMEOUT: u8 = 4;
/// Index of `PING_TIMEOUT` in [`REASONS`].
pub(crate) const PING_TIMEOUT: u8 = 5;
/// Index of `CONNECTION_LOST` in [`REASONS`].
pub(crate) const CONNECTION_LOST: u8 = 6;
/// Index of `TIMEOUT` in [`REASONS`].
pub(crate) const ATTEMPT_TIMEOUT: u8 = 9;
/// Index of `DEVICE_NOT_ALLOWED` in [`REASONS`].
pub(crate) const DEVICE_NOT_ALLOWED: u8 = 10;
/// Index of `POSTURE_CHECK_FAILED` in [`REASONS`].
pub(crate) const POSTURE_CHECK_FAILED: u8 = 11;

/// Index of `USER_DELETED` in [`REASONS`].
pub(crate) const USER_DELETED: u8 = 13;

/// Failed-attempt reasons (indexes into [`REASONS`]) with their weights.
pub(crate) const ATTEMPT_FAILURES: [(u8, f64); 6] = [
    (7, 0.3),
    (8, 0.15),
    (9, 0.2),
    (10, 0.1),
    (11, 0.15),
    (12, 0.1),
];

/// First names, varied enough for a few thousand users.
pub(crate) const FIRST_NAMES: [&str; 64] = [
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kaori",
    "Lars", "Maria", "Nikhil", "Olivia", "Pedro", "Qing", "Rosa", "Samir", "Tanya", "Umar", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoe", "Aiko", "Bruno", "Chloe", "Dmitri", "Emma", "Felix",
    "Gabriela", "Hannah", "Ivan", "Julia", "Kenji", "Leila", "Mateo", "Nora", "Oscar", "Priya",
    "Rafael", "Sofia", "Thomas", "Uma", "Victor", "Wanda", "Xavier", "Yara", "Zain", "Amelia",
    "Bilal", "Clara", "Diego", "Eva", "Femi", "Greta", "Hugo", "Isla", "Jonas", "Kemal", "Lucia",
    "Mika",
];

/// Last names.
pub(crate) const LAST_NAMES: [&str; 64] = [
    "Schmidt",
    "Nguyen",
    "Garcia",
    "Kowalski",
    "Tanaka",
    "Okafor",
    "Smith",
    "Rossi",
    "Silva",
    "Patel",
    "Muller",
    "Kim",
    "Johansson",
    "Dubois",
    "Haddad",
    "Novak",
    "Costa",
    "Ivanova",
    "Sato",
    "Brown",
    "Fischer",
    "Lopez",
    "Chen",
    "Andersen",
    "Mehta",
    "Wilson",
    "Moreau",
    "Yilmaz",
    "Santos",
    "Weber",
    "Suzuki",
    "Taylor",
    "Horvat",
    "Ramos",
    "Berg",
    "Khan",
    "Lee",
    "Martin",
    "Nowak",
    "Ortiz",
    "Park",
    "Quinn",
    "Reyes",
    "Sharma",
    "Thompson",
    "Varga",
    "Walker",
    "Young",
    "Zhang",
    "Alvarez",
    "Becker",
    "Clarke",
    "Das",
    "Eriksen",
    "Ferreira",
    "Gupta",
    "Hansen",
    "Ito",
    "Jensen",
    "Kruger",
    "Larsen",
    "Mendes",
    "Olsen",
    "Popescu",
];
