//! Image references: `transport:name` and the ostree-specific `ostree-…:` forms.
//!
//! The grammar and display quirks follow ostree-ext so that strings users already have keep
//! working; see `container-image-format.md` section 1.

use std::fmt;
use std::str::FromStr;

/// Why a reference string did not parse; each variant says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageRefError {
    /// No `:` separating transport (or scheme) from the rest.
    #[error("Missing ':' in {input}: expected <transport>:<name>")]
    MissingColon { input: String },
    /// The part before the first `:` is not a known transport.
    #[error(
        "Unknown transport '{transport}' in {input}: expected one of registry, docker://, oci, \
         oci-archive, docker-archive, containers-storage, dir, docker-daemon"
    )]
    UnknownTransport { transport: String, input: String },
    /// `docker:` without the `//` that skopeo requires.
    #[error("Missing // in docker:// in {input}")]
    MissingDockerSlashes { input: String },
    /// The name after the transport is empty.
    #[error("Invalid empty name in {input}")]
    EmptyName { input: String },
    /// The part before the first `:` is not an ostree image reference scheme.
    #[error(
        "Invalid ostree image reference scheme '{scheme}' in {input}: expected one of \
         ostree-image-signed, ostree-unverified-image, ostree-unverified-registry, \
         ostree-remote-image, ostree-remote-registry"
    )]
    InvalidScheme { scheme: String, input: String },
    /// A remote form without the `:` that ends the remote name.
    #[error("Missing second ':' in {input}: expected <scheme>:<remote>:<image>")]
    MissingSecondColon { input: String },
    /// A remote form with an empty remote name.
    #[error("Invalid empty remote name in {input}")]
    EmptyRemote { input: String },
}

/// Where skopeo fetches the image from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// A registry (`registry:` or `docker://`).
    Registry,
    /// An OCI layout directory (`oci:`).
    OciDir,
    /// A tar of an OCI layout (`oci-archive:`).
    OciArchive,
    /// A `docker save` tarball (`docker-archive:`).
    DockerArchive,
    /// The local containers-storage (`containers-storage:`).
    ContainerStorage,
    /// skopeo's `dir:` layout.
    Dir,
    /// A Docker daemon (`docker-daemon:`).
    DockerDaemon,
}

impl Transport {
    /// Every transport, for tests and help texts.
    pub const ALL: [Transport; 7] = [
        Transport::Registry,
        Transport::OciDir,
        Transport::OciArchive,
        Transport::DockerArchive,
        Transport::ContainerStorage,
        Transport::Dir,
        Transport::DockerDaemon,
    ];

    /// The prefix used when displaying (and sending to skopeo), including the `:`.
    pub fn prefix(self) -> &'static str {
        match self {
            Transport::Registry => "docker://",
            Transport::OciDir => "oci:",
            Transport::OciArchive => "oci-archive:",
            Transport::DockerArchive => "docker-archive:",
            Transport::ContainerStorage => "containers-storage:",
            Transport::Dir => "dir:",
            Transport::DockerDaemon => "docker-daemon:",
        }
    }

    /// Stores that keep layers uncompressed, so the manifest's digests and media types do not
    /// describe what skopeo serves; fetching their layers needs the proxy's `GetLayerInfo`.
    pub fn needs_layer_info(self) -> bool {
        matches!(self, Transport::ContainerStorage | Transport::DockerDaemon)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without the trailing ':' (and the `//` of docker) this is the transport's name.
        let p = self.prefix();
        f.write_str(p.trim_end_matches("//").trim_end_matches(':'))
    }
}

/// A transport plus an opaque, transport-specific name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// Where the image lives.
    pub transport: Transport,
    /// The name, kept verbatim.
    pub name: String,
}

impl ImageReference {
    /// The string for skopeo's `OpenImage`: the display form, except that
    /// `containers-storage:sha256:<id>` loses its `sha256:` (skopeo#2750).
    pub fn to_skopeo_string(&self) -> String {
        if self.transport == Transport::ContainerStorage {
            let (store, image) = match self.name.strip_prefix('[') {
                Some(rest) => match rest.find(']') {
                    Some(end) => self.name.split_at(end + 2),
                    None => ("", self.name.as_str()),
                },
                None => ("", self.name.as_str()),
            };
            // An empty ID would leave skopeo no image name at all: keep the reference as is.
            if let Some(id) = image.strip_prefix("sha256:")
                && !id.is_empty()
            {
                return format!("{}{store}{id}", self.transport.prefix());
            }
        }
        self.to_string()
    }
}

impl FromStr for ImageReference {
    type Err = ImageRefError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let Some((prefix, rest)) = input.split_once(':') else {
            return Err(ImageRefError::MissingColon {
                input: input.to_owned(),
            });
        };
        let (transport, name) = match prefix {
            "registry" => (Transport::Registry, rest),
            "docker" => match rest.strip_prefix("//") {
                Some(name) => (Transport::Registry, name),
                None => {
                    return Err(ImageRefError::MissingDockerSlashes {
                        input: input.to_owned(),
                    });
                }
            },
            "oci" => (Transport::OciDir, rest),
            "oci-archive" => (Transport::OciArchive, rest),
            "docker-archive" => (Transport::DockerArchive, rest),
            "containers-storage" => (Transport::ContainerStorage, rest),
            "dir" => (Transport::Dir, rest),
            "docker-daemon" => (Transport::DockerDaemon, rest),
            other => {
                return Err(ImageRefError::UnknownTransport {
                    transport: other.to_owned(),
                    input: input.to_owned(),
                });
            }
        };
        if name.is_empty() {
            return Err(ImageRefError::EmptyName {
                input: input.to_owned(),
            });
        }
        Ok(Self {
            transport,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.transport.prefix(), self.name)
    }
}

/// Who vouches for the image content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SignatureSource {
    /// Verify the ostree commit with this ostree remote's keys.
    OstreeRemote(String),
    /// Delegate to skopeo and `containers-policy.json`.
    ContainerPolicy,
    /// No ostree-side verification.
    ContainerPolicyAllowInsecure,
}

/// An image reference plus how to verify it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OstreeImageReference {
    /// Signature verification policy.
    pub sigverify: SignatureSource,
    /// The image.
    pub imgref: ImageReference,
}

/// Splits `<remote>:<rest>` for the two remote schemes.
fn split_remote<'a>(rest: &'a str, input: &str) -> Result<(&'a str, &'a str), ImageRefError> {
    let Some((remote, rest)) = rest.split_once(':') else {
        return Err(ImageRefError::MissingSecondColon {
            input: input.to_owned(),
        });
    };
    if remote.is_empty() {
        return Err(ImageRefError::EmptyRemote {
            input: input.to_owned(),
        });
    }
    Ok((remote, rest))
}

fn registry_ref(name: &str, input: &str) -> Result<ImageReference, ImageRefError> {
    if name.is_empty() {
        return Err(ImageRefError::EmptyName {
            input: input.to_owned(),
        });
    }
    Ok(ImageReference {
        transport: Transport::Registry,
        name: name.to_owned(),
    })
}

impl FromStr for OstreeImageReference {
    type Err = ImageRefError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let Some((scheme, rest)) = input.split_once(':') else {
            return Err(ImageRefError::MissingColon {
                input: input.to_owned(),
            });
        };
        let (sigverify, imgref) = match scheme {
            "ostree-image-signed" => (SignatureSource::ContainerPolicy, rest.parse()?),
            "ostree-unverified-image" => {
                (SignatureSource::ContainerPolicyAllowInsecure, rest.parse()?)
            }
            "ostree-unverified-registry" => (
                SignatureSource::ContainerPolicyAllowInsecure,
                registry_ref(rest, input)?,
            ),
            "ostree-remote-image" => {
                let (remote, rest) = split_remote(rest, input)?;
                (
                    SignatureSource::OstreeRemote(remote.to_owned()),
                    rest.parse()?,
                )
            }
            "ostree-remote-registry" => {
                let (remote, rest) = split_remote(rest, input)?;
                (
                    SignatureSource::OstreeRemote(remote.to_owned()),
                    registry_ref(rest, input)?,
                )
            }
            other => {
                return Err(ImageRefError::InvalidScheme {
                    scheme: other.to_owned(),
                    input: input.to_owned(),
                });
            }
        };
        Ok(Self { sigverify, imgref })
    }
}

impl fmt::Display for OstreeImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.sigverify, self.imgref.transport) {
            (SignatureSource::ContainerPolicyAllowInsecure, Transport::Registry) => {
                write!(f, "ostree-unverified-registry:{}", self.imgref.name)
            }
            (SignatureSource::ContainerPolicyAllowInsecure, _) => {
                write!(f, "ostree-unverified-image:{}", self.imgref)
            }
            (SignatureSource::ContainerPolicy, _) => {
                write!(f, "ostree-image-signed:{}", self.imgref)
            }
            (SignatureSource::OstreeRemote(r), _) => {
                write!(f, "ostree-remote-image:{r}:{}", self.imgref)
            }
        }
    }
}

#[cfg(test)]
mod tests;
