//! IANA time-zone names, from the database compiled into this binary (`chrono-tz`). Used by
//! the API to refuse unknown zones early and to list zones by region for pickers. `apply`
//! does not use it (see `SpecConfig::validate`): a newer release may know more zones.

use std::collections::BTreeMap;

use super::SpecError;

/// Region of names without an area (`UTC`, `GMT`, `EST5EDT`): IANA's own area for such zones.
pub const NO_AREA: &str = "Etc";

pub fn is_known(name: &str) -> bool {
    name.parse::<chrono_tz::Tz>().is_ok()
}

/// Refuses a name that is not in the IANA database, suggesting the right spelling when only
/// the case differs.
pub fn check_known(field: &str, name: &str) -> Result<(), SpecError> {
    super::check::timezone_syntax(field, name)?;
    if is_known(name) {
        return Ok(());
    }
    let hint = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .find(|n| n.eq_ignore_ascii_case(name))
        .map(|n| format!(" (did you mean {n}?)"))
        .unwrap_or_else(|| " (see `quantix spec timezones`)".into());
    Err(SpecError::invalid(
        field,
        format!("'{name}' is not a known IANA time zone{hint}"),
    ))
}

/// The region of a zone name: the part before the first '/', or [`NO_AREA`].
pub fn region_of(name: &str) -> &str {
    match name.split_once('/') {
        Some((region, _)) => region,
        None => NO_AREA,
    }
}

/// Every known zone, grouped by region; regions and the names in each are sorted. With
/// `region`, only that region (matched ignoring case); `None` if there is no such region.
pub fn by_region(region: Option<&str>) -> Option<BTreeMap<&'static str, Vec<&'static str>>> {
    let mut out: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for tz in chrono_tz::TZ_VARIANTS.iter() {
        let name = tz.name();
        let r = region_of(name);
        if region.is_some_and(|want| !want.eq_ignore_ascii_case(r)) {
            continue;
        }
        out.entry(r).or_default().push(name);
    }
    for names in out.values_mut() {
        names.sort_unstable();
    }
    if out.is_empty() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown() {
        for ok in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            check_known("timezone", ok).unwrap();
        }
        let e = check_known("timezone", "europe/berlin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean Europe/Berlin?"), "{e}");
        let e = check_known("timezone", "Mars/Olympus_Mons")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("timezone") && e.contains("not a known IANA"),
            "{e}"
        );
        assert!(check_known("timezone", "no spaces").is_err());
    }

    #[test]
    fn grouped_by_region() {
        let all = by_region(None).unwrap();
        assert!(all["Europe"].contains(&"Europe/Berlin"));
        assert!(all[NO_AREA].contains(&"UTC"));
        assert!(all[NO_AREA].contains(&"Etc/UTC"));
        let total: usize = all.values().map(Vec::len).sum();
        assert_eq!(total, chrono_tz::TZ_VARIANTS.len());
        let one = by_region(Some("europe")).unwrap();
        assert_eq!(one.keys().copied().collect::<Vec<_>>(), ["Europe"]);
        assert!(one["Europe"].windows(2).all(|w| w[0] < w[1]));
        assert!(by_region(Some("Atlantis")).is_none());
        assert_eq!(region_of("America/New_York"), "America");
        assert_eq!(region_of("UTC"), "Etc");
    }
}
