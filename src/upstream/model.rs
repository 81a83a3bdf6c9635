//! Session records as the API sends them, decoded tolerantly.
//!
//! The API marks no field as required, has changed names between versions, and is not known to
//! validate what it returns. So every field is optional, unknown fields are skipped, the aliases
//! seen in the vendor's own client are accepted (`sessionId`, `regionName`, `regionId`,
//! `startDateTime`, `connectionStatus`, ...), and a value of the wrong type becomes "missing"
//! instead of failing the page: one odd record must not cost the whole listing. Values that make
//! no sense (a negative byte count, an unknown status) are kept out so the tracker never counts them.
//!
//! Decoding is hand-written over serde's visitor API rather than derived: derive cannot express
//! "first non-empty alias wins" (it rejects a record carrying both `region` and `regionName`), and
//! a 100,000-session listing stays cheap by skipping the fields the exporter never uses without
//! allocating them, and by reading the text it does use in place: a [`Session`] borrows from the
//! response body (owning only strings that had to be unescaped), so the body outlives the page.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Status of a session. Anything else the API might say is [`SessionStatus::Unknown`] and is
/// never counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    /// Connected now.
    Active,
    /// Ended normally.
    Completed,
    /// Ended in failure (often before the tunnel came up).
    Failed,
    /// Missing or not one of the three documented values.
    Unknown,
}

impl SessionStatus {
    /// Parses the API's value, ignoring case.
    pub fn parse(value: &str) -> Self {
        if value.eq_ignore_ascii_case("ACTIVE") {
            Self::Active
        } else if value.eq_ignore_ascii_case("COMPLETED") {
            Self::Completed
        } else if value.eq_ignore_ascii_case("FAILED") {
            Self::Failed
        } else {
            Self::Unknown
        }
    }

    /// The value the API uses in its `status` parameter.
    pub fn as_api_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// One session record, reduced to what the exporter uses.
///
/// Its text borrows from the response body wherever the JSON string has no escapes (nearly
/// always), so decoding a page allocates no string: the tracker reads each value once and keeps
/// only what it has not seen before (a new session's id, a new label set).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Session<'a> {
    /// `id` (alias `sessionId`).
    pub id: Option<Cow<'a, str>>,
    /// `status` (alias `connectionStatus`).
    pub status: Option<SessionStatus>,
    /// `region` (aliases `regionName`, `regionId`).
    pub region: Option<Cow<'a, str>>,
    /// `networkName`.
    pub network: Option<Cow<'a, str>>,
    /// `hostName`.
    pub host: Option<Cow<'a, str>>,
    /// `connectorName`.
    pub connector: Option<Cow<'a, str>>,
    /// `userGroup`.
    pub user_group: Option<Cow<'a, str>>,
    /// `protocol`.
    pub protocol: Option<Cow<'a, str>>,
    /// `osType`.
    pub os_type: Option<Cow<'a, str>>,
    /// `disconnectReason`.
    pub disconnect_reason: Option<Cow<'a, str>>,
    /// `bytesIn`; negative values are dropped.
    pub bytes_in: Option<u64>,
    /// `bytesOut`; negative values are dropped.
    pub bytes_out: Option<u64>,
    /// `sessionStartTime` (alias `startDateTime`).
    pub start_time: Option<DateTime<Utc>>,
    /// `sessionEndTime`.
    pub end_time: Option<DateTime<Utc>>,
    /// `sessionDurationSeconds`; negative values are dropped.
    pub duration_seconds: Option<u64>,
}

/// One page of a sessions listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionsPage<'a> {
    /// The records that decoded as objects; elements of any other type are skipped.
    pub sessions: Vec<Session<'a>>,
    /// Elements of `sessions` that were not objects.
    pub skipped: usize,
    /// Cursor of the next page; `None` (or empty in the body) means this was the last page.
    pub next_cursor: Option<String>,
}

impl<'a> SessionsPage<'a> {
    /// Decodes a response body. Fails only when the body is not a JSON object with a `sessions`
    /// member that is an array or null: anything less is a broken answer to retry, not a page.
    pub fn from_slice(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

impl<'de> Deserialize<'de> for SessionsPage<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PageVisitor)
    }
}

struct PageVisitor;

impl<'de> Visitor<'de> for PageVisitor {
    type Value = SessionsPage<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sessions page object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SessionsPage<'de>, A::Error> {
        let mut page = SessionsPage::default();
        let mut saw_sessions = false;
        while let Some(key) = map.next_key::<PageField>()? {
            match key {
                PageField::Sessions => {
                    saw_sessions = true;
                    if let Some(list) = map.next_value::<Option<SessionList<'de>>>()? {
                        page.sessions = list.sessions;
                        page.skipped = list.skipped;
                    }
                }
                PageField::NextCursor => {
                    page.next_cursor = map.next_value::<Lenient<String>>()?.0;
                }
                PageField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_sessions {
            return Err(de::Error::missing_field("sessions"));
        }
        Ok(page)
    }
}

enum PageField {
    Sessions,
    NextCursor,
    Other,
}

impl<'de> Deserialize<'de> for PageField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = PageField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<PageField, E> {
                Ok(match v {
                    b"sessions" => PageField::Sessions,
                    b"nextCursor" => PageField::NextCursor,
                    _ => PageField::Other,
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PageField, E> {
                self.visit_bytes(v.as_bytes())
            }
        }
        // Names as bytes: compared with the few known ones, they need no UTF-8 check.
        deserializer.deserialize_bytes(FieldVisitor)
    }
}

struct SessionList<'a> {
    sessions: Vec<Session<'a>>,
    skipped: usize,
}

impl<'de> Deserialize<'de> for SessionList<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = SessionList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of sessions")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SessionList<'de>, A::Error> {
                let mut list = SessionList {
                    sessions: Vec::with_capacity(seq.size_hint().unwrap_or(100).min(1000)),
                    skipped: 0,
                };
                while let Some(item) = seq.next_element::<MaybeSession<'de>>()? {
                    match item.0 {
                        Some(s) => list.sessions.push(s),
                        None => list.skipped += 1,
                    }
                }
                Ok(list)
            }
        }
        deserializer.deserialize_seq(ListVisitor)
    }
}

/// A list element: a session when it is an object, `None` for anything else.
#[derive(Default)]
struct MaybeSession<'a>(Option<Session<'a>>);

impl<'de> Deserialize<'de> for MaybeSession<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MaybeSessionVisitor)
    }
}

struct MaybeSessionVisitor;

macro_rules! ignore_scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method<E: de::Error>(self, _v: $ty) -> Result<Self::Value, E> {
            Ok(Default::default())
        })*
    };
}

impl<'de> Visitor<'de> for MaybeSessionVisitor {
    type Value = MaybeSession<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session object")
    }

    ignore_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<MaybeSession<'de>, E> {
        Ok(MaybeSession(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeSession<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MaybeSession(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaybeSession<'de>, A::Error> {
        SessionVisitor.visit_map(map).map(|s| MaybeSession(Some(s)))
    }
}

impl<'de> Deserialize<'de> for Session<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SessionVisitor)
    }
}

/// Field names the exporter reads, with the aliases kept apart so the canonical name can win.
enum Field {
    Id,
    SessionId,
    Status,
    ConnectionStatus,
    Region,
    RegionName,
    RegionId,
    NetworkName,
    HostName,
    ConnectorName,
    UserGroup,
    Protocol,
    OsType,
    DisconnectReason,
    BytesIn,
    BytesOut,
    SessionStartTime,
    StartDateTime,
    SessionEndTime,
    SessionDurationSeconds,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Field, E> {
                Ok(match v {
                    b"id" => Field::Id,
                    b"sessionId" => Field::SessionId,
                    b"status" => Field::Status,
                    b"connectionStatus" => Field::ConnectionStatus,
                    b"region" => Field::Region,
                    b"regionName" => Field::RegionName,
                    b"regionId" => Field::RegionId,
                    b"networkName" => Field::NetworkName,
                    b"hostName" => Field::HostName,
                    b"connectorName" => Field::ConnectorName,
                    b"userGroup" => Field::UserGroup,
                    b"protocol" => Field::Protocol,
                    b"osType" => Field::OsType,
                    b"disconnectReason" => Field::DisconnectReason,
                    b"bytesIn" => Field::BytesIn,
                    b"bytesOut" => Field::BytesOut,
                    b"sessionStartTime" => Field::SessionStartTime,
                    b"startDateTime" => Field::StartDateTime,
                    b"sessionEndTime" => Field::SessionEndTime,
                    b"sessionDurationSeconds" => Field::SessionDurationSeconds,
                    _ => Field::Other,
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                self.visit_bytes(v.as_bytes())
            }
        }
        // Names as bytes: a record has 31 fields, and checking that each name is UTF-8 before
        // comparing it with the known ones cost more than the comparison. A name that is not
        // UTF-8 is no known name: it is skipped like any unknown field.
        deserializer.deserialize_bytes(FieldVisitor)
    }
}

struct SessionVisitor;

impl<'de> Visitor<'de> for SessionVisitor {
    type Value = Session<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Session<'de>, A::Error> {
        let mut s = Session::default();
        let mut session_id = None;
        let mut connection_status = None;
        let (mut region_name, mut region_id) = (None, None);
        let mut start_date_time = None;
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Id => s.id = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::SessionId => session_id = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::Status => s.status = map.next_value::<Lenient<SessionStatus>>()?.0,
                Field::ConnectionStatus => {
                    connection_status = map.next_value::<Lenient<SessionStatus>>()?.0;
                }
                Field::Region => s.region = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::RegionName => region_name = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::RegionId => region_id = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::NetworkName => s.network = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::HostName => s.host = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::ConnectorName => s.connector = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::UserGroup => s.user_group = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::Protocol => s.protocol = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::OsType => s.os_type = map.next_value::<Lenient<Cow<'de, str>>>()?.0,
                Field::DisconnectReason => {
                    s.disconnect_reason = map.next_value::<Lenient<Cow<'de, str>>>()?.0;
                }
                Field::BytesIn => s.bytes_in = map.next_value::<Lenient<u64>>()?.0,
                Field::BytesOut => s.bytes_out = map.next_value::<Lenient<u64>>()?.0,
                Field::SessionStartTime => {
                    s.start_time = map.next_value::<Lenient<Time>>()?.0.map(|t| t.0)
                }
                Field::StartDateTime => {
                    start_date_time = map.next_value::<Lenient<Time>>()?.0.map(|t| t.0)
                }
                Field::SessionEndTime => {
                    s.end_time = map.next_value::<Lenient<Time>>()?.0.map(|t| t.0)
                }
                Field::SessionDurationSeconds => {
                    s.duration_seconds = map.next_value::<Lenient<u64>>()?.0;
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        s.id = s.id.or(session_id);
        s.status = match s.status {
            Some(SessionStatus::Unknown) | None => connection_status.or(s.status),
            known => known,
        };
        s.region = s.region.or(region_name).or(region_id);
        s.start_time = s.start_time.or(start_date_time);
        Ok(s)
    }
}

/// `v` without leading and trailing white space, as [`str::trim`]. Nearly every value starts and
/// ends with a visible ASCII character, which no white space (ASCII or not) can be: that case
/// returns at once instead of decoding characters from both ends.
fn trim(v: &str) -> &str {
    let visible = |b: &u8| (0x21..0x7f).contains(b);
    match (v.as_bytes().first(), v.as_bytes().last()) {
        (Some(first), Some(last)) if visible(first) && visible(last) => v,
        _ => v.trim(),
    }
}

/// A value that decodes from whatever JSON stands where it is expected; anything that does not
/// fit becomes `None` instead of an error.
struct Lenient<T>(Option<T>);

/// Values that [`Lenient`] can build from JSON scalars; `'de` is the lifetime of the body, which
/// text can borrow from.
trait FromScalar<'de>: Sized {
    fn from_str(v: &str) -> Option<Self>;
    /// A string without escapes, which lives as long as the body.
    fn from_borrowed_str(v: &'de str) -> Option<Self> {
        Self::from_str(v)
    }
    fn from_i64(v: i64) -> Option<Self>;
    fn from_u64(v: u64) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
    fn from_bool(_v: bool) -> Option<Self> {
        None
    }
}

impl FromScalar<'_> for String {
    fn from_str(v: &str) -> Option<Self> {
        let v = trim(v);
        (!v.is_empty()).then(|| v.to_owned())
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(v.to_string())
    }
    fn from_u64(v: u64) -> Option<Self> {
        Some(v.to_string())
    }
    fn from_f64(v: f64) -> Option<Self> {
        v.is_finite().then(|| v.to_string())
    }
}

impl<'de> FromScalar<'de> for Cow<'de, str> {
    fn from_str(v: &str) -> Option<Self> {
        <String as FromScalar>::from_str(v).map(Cow::Owned)
    }
    fn from_borrowed_str(v: &'de str) -> Option<Self> {
        let v = trim(v);
        (!v.is_empty()).then_some(Cow::Borrowed(v))
    }
    fn from_i64(v: i64) -> Option<Self> {
        <String as FromScalar>::from_i64(v).map(Cow::Owned)
    }
    fn from_u64(v: u64) -> Option<Self> {
        <String as FromScalar>::from_u64(v).map(Cow::Owned)
    }
    fn from_f64(v: f64) -> Option<Self> {
        <String as FromScalar>::from_f64(v).map(Cow::Owned)
    }
}

impl FromScalar<'_> for u64 {
    fn from_str(v: &str) -> Option<Self> {
        trim(v).parse().ok()
    }
    fn from_i64(v: i64) -> Option<Self> {
        u64::try_from(v).ok()
    }
    fn from_u64(v: u64) -> Option<Self> {
        Some(v)
    }
    fn from_f64(v: f64) -> Option<Self> {
        // Float byte counts happen in loosely typed JSON; NaN, negatives and values beyond u64 do not count.
        (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
    }
}

impl FromScalar<'_> for SessionStatus {
    fn from_str(v: &str) -> Option<Self> {
        Some(SessionStatus::parse(trim(v)))
    }
    fn from_i64(_v: i64) -> Option<Self> {
        Some(SessionStatus::Unknown)
    }
    fn from_u64(_v: u64) -> Option<Self> {
        Some(SessionStatus::Unknown)
    }
    fn from_f64(_v: f64) -> Option<Self> {
        Some(SessionStatus::Unknown)
    }
}

/// A timestamp: an RFC 3339 string (a missing offset means UTC), or epoch seconds or
/// milliseconds as a number.
struct Time(DateTime<Utc>);

impl Time {
    fn from_epoch(v: i64) -> Option<Self> {
        // Values past the year 5138 in seconds are taken as milliseconds.
        let t = if v.unsigned_abs() >= 100_000_000_000 {
            Utc.timestamp_millis_opt(v).single()
        } else {
            Utc.timestamp_opt(v, 0).single()
        };
        t.map(Time)
    }
}

impl FromScalar<'_> for Time {
    fn from_str(v: &str) -> Option<Self> {
        let v = trim(v);
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Some(Time(t.with_timezone(&Utc)));
        }
        NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|t| Time(t.and_utc()))
    }
    fn from_i64(v: i64) -> Option<Self> {
        Self::from_epoch(v)
    }
    fn from_u64(v: u64) -> Option<Self> {
        i64::try_from(v).ok().and_then(Self::from_epoch)
    }
    fn from_f64(v: f64) -> Option<Self> {
        (v.is_finite() && v.abs() < 1e15)
            .then(|| Self::from_epoch(v as i64))
            .flatten()
    }
}

impl<'de, T: FromScalar<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor(std::marker::PhantomData))
    }
}

struct LenientVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: FromScalar<'de>> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Lenient(T::from_bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Lenient(T::from_i64(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Lenient(T::from_u64(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Lenient(T::from_f64(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lenient(T::from_str(v)))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lenient(T::from_borrowed_str(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(json: &str) -> SessionsPage<'_> {
        SessionsPage::from_slice(json.as_bytes()).expect("page decodes")
    }

    #[test]
    fn decodes_the_documented_shape() {
        let p = page(
            r#"{"sessions":[{"id":"s1","status":"ACTIVE","region":"us-east-1","networkName":"hq",
            "hostName":"h","connectorName":"c","userGroup":"eng","protocol":"UDP","osType":"LINUX",
            "bytesIn":10,"bytesOut":20,"sessionStartTime":"2023-07-21T14:49:53.940Z",
            "email":"a@b.c","publicIp":"1.2.3.4"}],"nextCursor":"abc"}"#,
        );
        assert_eq!(p.next_cursor.as_deref(), Some("abc"));
        let s = &p.sessions[0];
        assert_eq!(s.id.as_deref(), Some("s1"));
        assert_eq!(s.status, Some(SessionStatus::Active));
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert_eq!(s.network.as_deref(), Some("hq"));
        assert_eq!((s.bytes_in, s.bytes_out), (Some(10), Some(20)));
        assert_eq!(
            s.start_time.map(|t| t.timestamp_millis()),
            Some(1_689_950_993_940)
        );
    }

    #[test]
    fn accepts_the_aliases_and_prefers_canonical_names() {
        let p = page(
            r#"{"sessions":[
              {"sessionId":"a","connectionStatus":"completed","regionName":"eu","startDateTime":"2024-01-01T00:00:00Z"},
              {"id":"b","sessionId":"x","region":"r1","regionName":"r2","regionId":"r3"},
              {"id":"c","regionId":"r3"}]}"#,
        );
        assert_eq!(p.next_cursor, None);
        let [a, b, c] = &p.sessions[..] else {
            panic!("three sessions")
        };
        assert_eq!(a.id.as_deref(), Some("a"));
        assert_eq!(a.status, Some(SessionStatus::Completed));
        assert_eq!(a.region.as_deref(), Some("eu"));
        assert!(a.start_time.is_some());
        assert_eq!(
            (b.id.as_deref(), b.region.as_deref()),
            (Some("b"), Some("r1"))
        );
        assert_eq!(c.region.as_deref(), Some("r3"));
    }

    #[test]
    fn nonsense_values_become_missing_without_failing_the_page() {
        let p = page(
            r#"{"sessions":[{"id":"a","status":"WEIRD","bytesIn":-5,"bytesOut":"12",
              "region":"","networkName":null,"sessionStartTime":"yesterday","protocol":{"x":1},
              "sessionDurationSeconds":-3, "extra":[1,2,{"deep":true}]}, 7, "str", null, []],
              "nextCursor":""}"#,
        );
        assert_eq!(p.sessions.len(), 1);
        assert_eq!(p.skipped, 4);
        let s = &p.sessions[0];
        assert_eq!(s.status, Some(SessionStatus::Unknown));
        assert_eq!(s.bytes_in, None);
        assert_eq!(s.bytes_out, Some(12));
        assert_eq!(s.region, None);
        assert_eq!(s.network, None);
        assert_eq!(s.start_time, None);
        assert_eq!(s.protocol, None);
        assert_eq!(s.duration_seconds, None);
        assert_eq!(p.next_cursor, None, "an empty cursor means the last page");
    }

    #[test]
    fn field_names_are_read_unescaped_and_odd_ones_skipped() {
        // An escaped name is the name; a name that is not UTF-8 is no known one, like any
        // unknown field, and costs neither the record nor the page.
        let mut body = br#"{"sessions":[{"id":"a","re\u0067ion":"eu","x"#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(br#"":1,"status":"ACTIVE"}],"next\u0043ursor":"c"}"#);
        let p = SessionsPage::from_slice(&body).expect("page decodes");
        let s = &p.sessions[0];
        assert_eq!(s.id.as_deref(), Some("a"));
        assert_eq!(s.region.as_deref(), Some("eu"));
        assert_eq!(s.status, Some(SessionStatus::Active));
        assert_eq!(p.next_cursor.as_deref(), Some("c"));
    }

    #[test]
    fn text_is_read_in_place_unless_it_must_be_unescaped() {
        let p = page(
            r#"{"sessions":[{"id":" a1 ","region":"eu\u002dwest","userGroup":"R&D \"ops\"",
              "networkName":"hq","bytesIn":"5"}]}"#,
        );
        let s = &p.sessions[0];
        // Trimmed, and still a slice of the body.
        assert!(matches!(s.id, Some(Cow::Borrowed("a1"))), "{:?}", s.id);
        assert!(matches!(s.network, Some(Cow::Borrowed("hq"))));
        // Escapes leave the decoder no slice to point at.
        assert_eq!(s.region.as_deref(), Some("eu-west"));
        assert!(matches!(s.region, Some(Cow::Owned(_))));
        assert_eq!(s.user_group.as_deref(), Some("R&D \"ops\""));
        assert_eq!(s.bytes_in, Some(5));
    }

    #[test]
    fn trimming_matches_str_trim() {
        for v in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\n",
            "\u{a0}a",
            "a\u{2003}",
            "\u{85}",
            "é",
            " é ",
            "a b",
            "\u{3000}x\u{3000}",
            "~",
            "!x!",
        ] {
            assert_eq!(trim(v), v.trim(), "{v:?}");
        }
    }

    #[test]
    fn broken_bodies_are_errors_to_retry() {
        for body in [
            r#"{"sessions":[{"id":"a"}"#,
            "<html>502 Bad Gateway</html>",
            "",
            "[]",
            r#"{"nextCursor":"x"}"#,
            r#"{"sessions":"nope"}"#,
        ] {
            assert!(
                SessionsPage::from_slice(body.as_bytes()).is_err(),
                "{body:?}"
            );
        }
        assert!(page(r#"{"sessions":null}"#).sessions.is_empty());
    }

    #[test]
    fn times_without_offset_and_epoch_numbers_are_understood() {
        let p = page(
            r#"{"sessions":[{"id":"a","sessionStartTime":"2024-01-01T10:00:00.5","sessionEndTime":1704103200000},
              {"id":"b","sessionStartTime":1704103200}]}"#,
        );
        assert_eq!(
            p.sessions[0].start_time.map(|t| t.timestamp_millis()),
            Some(1_704_103_200_500)
        );
        assert_eq!(
            p.sessions[0].end_time.map(|t| t.timestamp()),
            Some(1_704_103_200)
        );
        assert_eq!(
            p.sessions[1].start_time.map(|t| t.timestamp()),
            Some(1_704_103_200)
        );
    }
}
