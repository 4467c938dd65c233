//! One place runs a planned app, for both engines, in one order: the engine
//! makes the image; the oci engine's layout and archive are written; verify
//! runs unless the plan says `--no-verify`; only then does the image reach
//! the docker engine (tags) or a registry. Engines build and publishers
//! publish; neither decides what happens next — the [`Plan`](crate::plan)
//! did, and this module carries it out.

use crate::cache::{Cache, KeyHasher, Kind};
use crate::check_id::CheckId;
use crate::config::{App, EngineKind, Workspace};
use crate::engine::{DockerEngine, DockerOptions, OciEngine};
use crate::error::Result;
use crate::image::Packed;
use crate::plan::{AppPlan, Plan};
use crate::publish::{Destination, Outputs};
use crate::remote_cache::RemoteCache;
use crate::report::Reporter;
use crate::sign::Signing;
use crate::verify::{Expectations, ImageSource, Report};
use camino::Utf8PathBuf;

/// The engines a plan uses, each made once per run.
pub struct Engines<'a> {
    oci: Option<OciEngine<'a>>,
    docker: Option<DockerEngine<'a>>,
    remote: Option<&'a RemoteCache<'a>>,
    signing: Option<&'a Signing<'a>>,
}

impl<'a> Engines<'a> {
    /// Makes the engines `plan` uses: the docker engine only when an app
    /// uses it (it needs no host `go`), the oci engine only when one does.
    pub fn for_plan(
        workspace: &'a Workspace,
        plan: &Plan,
        docker_options: DockerOptions,
        remote: Option<&'a RemoteCache<'a>>,
        reporter: &'a dyn Reporter,
    ) -> Result<Engines<'a>> {
        let uses = |kind| plan.apps.iter().any(|a| a.engine == kind);
        let docker = if uses(EngineKind::Docker) {
            Some(DockerEngine::new(workspace, docker_options, reporter)?.with_remote(remote))
        } else {
            None
        };
        let oci = if uses(EngineKind::Oci) {
            Some(OciEngine::new(workspace, reporter)?.with_remote(remote))
        } else {
            None
        };
        Ok(Engines {
            oci,
            docker,
            remote,
            signing: None,
        })
    }

    /// Signs every image of the oci engine with `signing` before its layout
    /// and archive are written (docs/signing.md).
    pub fn with_signing(mut self, signing: Option<&'a Signing<'a>>) -> Self {
        self.signing = signing;
        self
    }
}

/// How verify went for a shipped image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Every check passed (now, or for this very image in an earlier run).
    Passed,
    /// `--no-verify`.
    Skipped,
}

impl Verified {
    /// `passed` or `skipped`, as results print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verified::Passed => "passed",
            Verified::Skipped => "skipped",
        }
    }
}

/// What one app's run made and where it went.
#[derive(Debug, Clone)]
pub struct Shipped {
    /// The app's name.
    pub app: String,
    /// The engine that made it.
    pub engine: EngineKind,
    /// Version, revision, date and dirty files.
    pub metadata: crate::image::ImageMetadata,
    /// The image's tags.
    pub tags: Vec<String>,
    /// The image digest (oci engine).
    pub digest: Option<String>,
    /// The docker engine's image id (docker engine).
    pub image_id: Option<String>,
    /// Each platform and its manifest digest (oci engine).
    pub platforms: Vec<(String, Option<String>)>,
    /// The layout and archive (oci engine).
    pub outputs: Option<Outputs>,
    /// `name:tag` references in the docker engine.
    pub loaded: Vec<String>,
    /// `host/path/name@digest` references in registries.
    pub pushed: Vec<String>,
    /// Verify's verdict.
    pub verified: Verified,
}

/// The end of one app's run.
#[derive(Debug)]
pub enum Outcome {
    /// Made, verified (or not, as asked) and sent where the plan said.
    Shipped(Box<Shipped>),
    /// Verify failed: nothing was loaded, tagged or pushed.
    ChecksFailed {
        /// The image verify read (a layout path or `docker:<id>`).
        image: String,
        /// Its report.
        report: Box<Report>,
    },
}

/// Runs `step` for `app` with the run's `engines`. Hold the app's output
/// lock around it.
pub fn run(
    engines: &Engines,
    workspace: &Workspace,
    app: &App,
    step: &AppPlan,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    match step.engine {
        EngineKind::Oci => {
            let engine = engines.oci.as_ref().expect("the plan's engines were made");
            run_oci(engine, engines, workspace, app, step, reporter)
        }
        EngineKind::Docker => {
            let engine = engines
                .docker
                .as_ref()
                .expect("the plan's engines were made");
            run_docker(engine, app, step)
        }
    }
}

fn run_oci(
    engine: &OciEngine,
    engines: &Engines,
    workspace: &Workspace,
    app: &App,
    step: &AppPlan,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    let cache = engine.cache();
    let expect = match step.verify {
        true => Some(expectations(engines, workspace, app)?),
        false => None,
    };
    let outputs = Outputs::of(workspace, app);
    let (packed, verdict) = std::thread::scope(|scope| -> Result<_> {
        // The image's own content is verified (from a layout of links to the
        // cache) while its attachments, signatures, layout and archive are made.
        let early = std::sync::Mutex::new(None);
        let start_early = |image: &crate::image::Image| {
            let Some(expect) = expect.as_ref() else {
                return;
            };
            if cache
                .get(Kind::Verified, &VerifyKeys::new(expect, image).content)
                .is_some()
            {
                return;
            }
            let image = image.clone();
            let folder = outputs.layout.parent().map(Utf8PathBuf::from);
            let handle = scope.spawn(move || verify_content_early(cache, expect, &image, folder));
            *early.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        };
        let mut packed = engine.pack_with_hook(app, step.metadata.clone(), &start_early)?;
        let early = early.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(signing) = engines.signing {
            let reference = crate::sign::identity(signing.registry.as_deref(), app.image_name());
            let signed = crate::sign::sign_image(cache, signing.signer, &reference, &packed.image)?;
            packed.image.artifacts.extend(signed);
        }
        // Verify reads the layout while the archive is written.
        let verdict = outputs.write_with(cache, &packed, reporter, || {
            let Some(expect) = &expect else {
                return Ok(Ok(Verified::Skipped));
            };
            let early = early.map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
            Ok(
                match verify_layout(cache, expect, &packed, &outputs.layout, early)? {
                    Some(report) => Err(report),
                    None => Ok(Verified::Passed),
                },
            )
        })?;
        Ok((packed, verdict))
    })?;
    let verified = match verdict {
        Ok(verified) => verified,
        Err(report) => {
            return Ok(Outcome::ChecksFailed {
                image: outputs.layout.to_string(),
                report: Box::new(report),
            })
        }
    };
    let mut loaded = Vec::new();
    let mut pushed = Vec::new();
    for destination in &step.destinations {
        let references = destination.publish(cache, &packed, &outputs, reporter)?;
        match destination {
            Destination::Docker => loaded.extend(references),
            Destination::Registry { .. } => pushed.extend(references),
        }
    }
    // Only what went into a verified, published image is shared.
    if let Some(remote) = engines.remote {
        remote.push_pending();
    }
    let image = &packed.image;
    Ok(Outcome::Shipped(Box::new(Shipped {
        app: packed.app.clone(),
        engine: EngineKind::Oci,
        tags: image.tags.clone(),
        digest: Some(image.digest().to_string()),
        image_id: None,
        platforms: image
            .platforms
            .iter()
            .map(|p| (p.platform.to_string(), Some(p.manifest.digest.clone())))
            .collect(),
        outputs: Some(outputs),
        loaded,
        pushed,
        verified,
        metadata: packed.metadata,
    })))
}

fn run_docker(engine: &DockerEngine, app: &App, step: &AppPlan) -> Result<Outcome> {
    let packed = engine.pack(app)?;
    let verified = if step.verify {
        // The image holds one platform, the engine's.
        let expect = Expectations {
            platforms: vec![packed.platform.clone()],
            ..Expectations::for_app(app)
        };
        let report = crate::verify::verify(&ImageSource::Docker(packed.image_id.clone()), &expect)?;
        if !report.passed() {
            return Ok(Outcome::ChecksFailed {
                image: format!("docker:{}", packed.image_id),
                report: Box::new(report),
            });
        }
        Verified::Passed
    } else {
        Verified::Skipped
    };
    engine.tag(&packed)?;
    Ok(Outcome::Shipped(Box::new(Shipped {
        app: packed.app.clone(),
        engine: EngineKind::Docker,
        tags: packed
            .references
            .iter()
            .filter_map(|r| r.rsplit_once(':').map(|(_, tag)| tag.to_string()))
            .collect(),
        digest: None,
        image_id: Some(packed.image_id.clone()),
        platforms: vec![(packed.platform.to_string(), None)],
        outputs: None,
        loaded: packed.references.clone(),
        pushed: Vec::new(),
        verified,
        metadata: packed.metadata,
    })))
}

/// What verify expects of `app`'s image in this run. What this run signs is
/// checked before it ships: with the app's `verify.key` when it has one, else
/// with the signer's own public key.
fn expectations(engines: &Engines, workspace: &Workspace, app: &App) -> Result<Expectations> {
    let mut expect = Expectations::for_app(app);
    expect.sign_key =
        crate::sign::configured_key(&workspace.root, &app.config.verify)?.or_else(|| {
            engines.signing.map(|s| crate::sign::PublicKey {
                key: s.signer.public_key(),
                source: s.signer.describe(),
            })
        });
    Ok(expect)
}

/// The `verified/` markers of an image: its own content (config and layers,
/// all in its digest), and that with its attachments, which are not in the
/// digest and change more often (provenance names the sources).
struct VerifyKeys {
    content: String,
    full: String,
}

impl VerifyKeys {
    fn new(expect: &Expectations, image: &crate::image::Image) -> VerifyKeys {
        let mut key = KeyHasher::new("verified/v3");
        key.text("gopack", env!("CARGO_PKG_VERSION"))
            .text("image", image.digest())
            .text("expect", &format!("{expect:?}"));
        for check in CheckId::ALL {
            key.text("check", check.as_str());
        }
        let content = key.finish();
        for artifact in &image.artifacts {
            key.text("artifact", &artifact.manifest.digest);
        }
        VerifyKeys {
            content,
            full: key.finish(),
        }
    }
}

/// Verifies the content of `image` (no attachments) from a layout of links
/// to the cache in a temporary folder beside the outputs, and remembers a
/// pass. False when it did not pass or could not run: the layout is then
/// verified whole, for a report of everything.
fn verify_content_early(
    cache: &Cache,
    expect: &Expectations,
    image: &crate::image::Image,
    folder: Option<Utf8PathBuf>,
) -> bool {
    let Some(folder) = folder else {
        return false;
    };
    let Ok(temp) = tempfile::Builder::new()
        .prefix(".tmp-verify-")
        .tempdir_in(&folder)
    else {
        return false;
    };
    let Some(dir) = camino::Utf8Path::from_path(temp.path()) else {
        return false;
    };
    if crate::publish::layout::write_linked(cache, image, dir).is_err() {
        return false;
    }
    let source = ImageSource::Path(dir.to_path_buf());
    match crate::verify::verify_content(&source, expect) {
        Ok(report) if report.passed() => {
            let key = VerifyKeys::new(expect, image).content;
            cache.put(Kind::Verified, &key, b"passed\n").is_ok()
        }
        _ => false,
    }
}

/// Verifies the layout unless this image passed before (see [`VerifyKeys`]);
/// `content_now` says whether its content passed in this run already.
fn verify_layout(
    cache: &Cache,
    expect: &Expectations,
    packed: &Packed,
    layout: &Utf8PathBuf,
    content_now: Option<bool>,
) -> Result<Option<Report>> {
    let keys = VerifyKeys::new(expect, &packed.image);
    if cache.get(Kind::Verified, &keys.full).is_some() {
        return Ok(None);
    }
    let source = ImageSource::Path(layout.clone());
    let content_passed =
        content_now == Some(true) || cache.get(Kind::Verified, &keys.content).is_some();
    let report = if content_passed {
        crate::verify::verify_attachments(&source, expect)?
    } else {
        crate::verify::verify(&source, expect)?
    };
    if report.passed() {
        if !content_passed {
            cache.put(Kind::Verified, &keys.content, b"passed\n")?;
        }
        cache.put(Kind::Verified, &keys.full, b"passed\n")?;
        return Ok(None);
    }
    Ok(Some(report))
}
