//! Key rotation: what each key version protects, whether every live replica can take a new
//! current key, and re-encrypting every sealed record online.
//!
//! Re-encryption reads a page of values under an old version, re-seals them outside any
//! transaction, then writes the page in one short transaction with compare-and-swap on the old
//! ciphertext: a token that a refresh replaced meanwhile keeps its newer value. Nothing is
//! remembered between runs; a rerun finds whatever is still under an old version, so a
//! rotation killed half-way simply continues.

use std::collections::BTreeMap;

use igbroker_store::{ReplicaRow, SealedColumn, SealedSwap, Store, StoreError};
use igbroker_vault::{Aad, KeyRing, Vault};

/// Records per key version, per sealed column. Version 0 counts values the vault cannot parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUsage {
    pub by_version: BTreeMap<i64, BTreeMap<SealedColumn, i64>>,
}

impl KeyUsage {
    pub fn total(&self, version: i64) -> i64 {
        self.by_version
            .get(&version)
            .map_or(0, |cols| cols.values().sum())
    }

    /// Records under any version other than `current` (malformed ones excluded).
    pub fn not_under(&self, current: u32) -> i64 {
        self.by_version
            .keys()
            .filter(|v| **v != 0 && **v != i64::from(current))
            .map(|v| self.total(*v))
            .sum()
    }

    pub fn malformed(&self) -> i64 {
        self.total(0)
    }

    /// Versions that protect records but are missing from `ring`, with their record counts.
    pub fn missing_from(&self, ring: &KeyRing) -> Vec<(i64, i64)> {
        self.by_version
            .keys()
            .filter(|v| **v != 0 && !u32::try_from(**v).is_ok_and(|v| ring.holds(v)))
            .map(|v| (*v, self.total(*v)))
            .collect()
    }
}

pub async fn key_usage(store: &Store) -> Result<KeyUsage, StoreError> {
    let mut usage = KeyUsage::default();
    for column in SealedColumn::ALL {
        for (version, count) in store.count_sealed_by_version(column).await? {
            if count > 0 {
                usage
                    .by_version
                    .entry(version)
                    .or_default()
                    .insert(column, count);
            }
        }
    }
    Ok(usage)
}

/// The message for records whose key the ring lacks (what the vault says on open, too).
pub fn missing_key_message(version: i64, records: i64) -> String {
    format!(
        "{records} record(s) were encrypted with key v{version}, which the key ring does not hold; \
         add that key to the ring (keys file or IGBROKER_KEYS__RING) on every replica"
    )
}

/// Why each live replica cannot take `version` as the current key: it lacks it, or holds other
/// key material under that number. Empty when all can.
pub fn replica_problems(ring: &KeyRing, version: u32, replicas: &[ReplicaRow]) -> Vec<String> {
    let ours = ring.fingerprint(version);
    replicas
        .iter()
        .filter_map(|r| {
            let name = format!("replica {} ({})", r.node_id, r.description);
            if !r.versions().contains(&version) {
                return Some(format!(
                    "{name} does not hold key v{version}; it re-reads the ring file every few seconds, \
                     so check that it uses the same ring file (or restart it with the new key)"
                ));
            }
            match (r.fingerprint(version), ours.as_deref()) {
                (Some(theirs), Some(ours)) if theirs != ours => Some(format!(
                    "{name} holds different key material under v{version} (fingerprint {theirs}, \
                     this ring has {ours}); every replica must share one ring file"
                )),
                _ => None,
            }
        })
        .collect()
}

/// Live replicas that do not seal with `version` yet.
pub fn replicas_not_sealing_with(version: u32, replicas: &[ReplicaRow]) -> Vec<&ReplicaRow> {
    replicas
        .iter()
        .filter(|r| r.current_version != i64::from(version))
        .collect()
}

#[derive(Debug, Clone, Copy)]
pub struct ReencryptOptions {
    /// Rows per transaction.
    pub batch_size: i64,
    /// Stop after this many batches (tests; an interrupted rotation).
    pub max_batches: Option<u64>,
}

impl Default for ReencryptOptions {
    fn default() -> Self {
        ReencryptOptions {
            batch_size: 500,
            max_batches: None,
        }
    }
}

/// Where re-encryption reports how far it got.
pub trait Progress {
    /// More work was found (called once per pass).
    fn add_total(&mut self, records: u64);
    /// `records` more were handled (re-sealed, superseded or failed).
    fn advance(&mut self, records: u64);
    fn finish(&mut self) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn add_total(&mut self, _: u64) {}
    fn advance(&mut self, _: u64) {}
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReencryptFailure {
    pub column: SealedColumn,
    pub id: String,
    /// The vault's message (never a secret).
    pub error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReencryptReport {
    pub resealed: u64,
    /// Values replaced by a concurrent writer before their re-sealed copy was stored.
    pub superseded: u64,
    pub failures: Vec<ReencryptFailure>,
    pub batches: u64,
    /// `max_batches` was reached.
    pub stopped_early: bool,
    /// Records still under another version afterwards (e.g. sealed meanwhile by a replica
    /// that has not loaded the new current key yet, or ones that failed).
    pub remaining: i64,
}

/// A replica that had not switched yet may seal under the old key while a pass runs; a few
/// passes catch those, and a rerun catches anything later.
const MAX_PASSES: usize = 5;

/// Re-seals every record under a version other than the vault's current one.
pub async fn reencrypt(
    store: &Store,
    vault: &Vault,
    options: ReencryptOptions,
    progress: &mut dyn Progress,
) -> Result<ReencryptReport, StoreError> {
    let current = vault.current_version();
    let mut report = ReencryptReport::default();
    let mut failed_ids = std::collections::HashSet::new();
    for _pass in 0..MAX_PASSES {
        let usage = key_usage(store).await?;
        let todo: Vec<(SealedColumn, i64, i64)> = usage
            .by_version
            .iter()
            .filter(|(v, _)| {
                **v != i64::from(current) && u32::try_from(**v).is_ok_and(|v| vault.holds(v))
            })
            .flat_map(|(v, cols)| cols.iter().map(|(c, n)| (*c, *v, *n)))
            .collect();
        let total: i64 = todo.iter().map(|(_, _, n)| n).sum();
        let fresh = u64::try_from(total)
            .unwrap_or(0)
            .saturating_sub(failed_ids.len() as u64);
        if fresh == 0 {
            break;
        }
        progress.add_total(fresh);
        let before = report.resealed + report.superseded;
        for (column, version, _) in todo {
            let mut after = String::new();
            loop {
                if options.max_batches.is_some_and(|m| report.batches >= m) {
                    report.stopped_early = true;
                    report.remaining = key_usage(store).await?.not_under(current);
                    return Ok(report);
                }
                let page = store
                    .sealed_page(column, version, &after, options.batch_size)
                    .await?;
                let mut swaps = Vec::with_capacity(page.values.len());
                let mut handled = 0u64;
                for value in page.values {
                    let aad = Aad::new(column.table(), &value.id, column.aad_column());
                    match vault.reseal(&aad, &value.sealed) {
                        Ok(Some(new)) => swaps.push(SealedSwap {
                            id: value.id,
                            old: value.sealed,
                            new,
                        }),
                        Ok(None) => handled += 1,
                        Err(e) => {
                            handled += 1;
                            if failed_ids.insert((column, value.id.clone())) {
                                report.failures.push(ReencryptFailure {
                                    column,
                                    id: value.id,
                                    error: e.to_string(),
                                });
                            }
                        }
                    }
                }
                let attempted = swaps.len() as u64;
                let written = store.swap_sealed(column, &swaps).await?;
                report.resealed += written;
                report.superseded += attempted - written.min(attempted);
                report.batches += 1;
                progress.advance(attempted + handled);
                match page.next_after {
                    Some(next) => after = next,
                    None => break,
                }
            }
        }
        if report.resealed + report.superseded == before {
            break;
        }
    }
    progress.finish();
    report.remaining = key_usage(store).await?.not_under(current);
    Ok(report)
}
