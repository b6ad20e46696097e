//! The Regions a server serves: a request signed for any other is refused before anything is
//! looked up, so that callers cannot open scopes (and their quota buckets) under made-up names.

/// Every Region of the `aws` partition, as botocore 1.44.5's `partitions.json` lists it (the
/// client the interop suite pins), without the pseudo-Region `aws-global`.
pub const AWS_COMMERCIAL_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "me-west-1",
    "mx-central-1",
    "sa-east-1",
    "sa-west-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// A set of Region names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    /// Sorted, no duplicates.
    names: Box<[Box<str>]>,
}

impl Default for Regions {
    /// Every AWS commercial Region.
    fn default() -> Self {
        Regions::new(AWS_COMMERCIAL_REGIONS.iter().copied())
    }
}

impl Regions {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Regions {
        let mut names: Vec<Box<str>> = names.into_iter().map(Box::from).collect();
        names.sort_unstable();
        names.dedup();
        Regions {
            names: names.into(),
        }
    }

    /// `us-east-1,eu-west-1`: names the model's pattern `^([a-z]+-){2,3}\d+$` allows.
    pub fn parse(text: &str) -> Result<Regions, String> {
        let names: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Err("no Region named".into());
        }
        if let Some(bad) = names.iter().find(|n| !is_region_name(n)) {
            return Err(format!("'{bad}' is not a Region name such as us-east-1"));
        }
        Ok(Regions::new(names))
    }

    pub fn contains(&self, region: &str) -> bool {
        self.names.binary_search_by(|n| (**n).cmp(region)).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }
}

/// A Region name as the model's pattern `^([a-z]+-){2,3}\d+$` has it.
fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some((last, words)) = parts.split_last() else {
        return false;
    };
    (2..=3).contains(&words.len())
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_commercial_partition() {
        let r = Regions::default();
        assert_eq!(r.iter().count(), 36);
        for name in [
            "us-east-1",
            "ap-southeast-7",
            "mx-central-1",
            "il-central-1",
            "sa-west-1",
        ] {
            assert!(r.contains(name), "{name}");
        }
        for name in [
            "us-gov-west-1",
            "cn-north-1",
            "eusc-de-east-1",
            "xx-fake-1",
            "aws-global",
            "",
        ] {
            assert!(!r.contains(name), "{name}");
        }
        assert!(AWS_COMMERCIAL_REGIONS.iter().all(|n| is_region_name(n)));
    }

    #[test]
    fn a_list_parses() {
        let r = Regions::parse("us-east-1, eu-west-1,us-east-1").unwrap();
        assert_eq!(r.iter().collect::<Vec<_>>(), ["eu-west-1", "us-east-1"]);
        assert!(Regions::parse("").is_err());
        assert!(Regions::parse("us-east-1,Moon").is_err());
        assert!(Regions::parse("local").is_err());
    }
}
