//! The wlr data-control protocol's events, recorded: the wayland-client event queue is
//! dispatched into [`Protocol`], which only notes what happened — offers and their types, the
//! selection, pastes of our sources — for the worker to act on afterwards, with its poll registry
//! and event channel at hand.

use std::{collections::HashMap, os::fd::OwnedFd};

use wayland_client::{
    Connection, Dispatch, Proxy, QueueHandle,
    backend::ObjectId,
    event_created_child,
    globals::GlobalListContents,
    protocol::{wl_registry::WlRegistry, wl_seat::WlSeat},
};
use wayland_protocols_wlr::data_control::v1::client::{
    zwlr_data_control_device_v1::{self, ZwlrDataControlDeviceV1},
    zwlr_data_control_manager_v1::ZwlrDataControlManagerV1,
    zwlr_data_control_offer_v1::{self, ZwlrDataControlOfferV1},
    zwlr_data_control_source_v1::{self, ZwlrDataControlSourceV1},
};

/// What the event queue reported, for the worker to act on.
#[derive(Default)]
pub(super) struct Protocol {
    /// MIME types of each live offer.
    pub(super) offers: HashMap<ObjectId, (ZwlrDataControlOfferV1, Vec<String>)>,
    /// The clipboard changed to this offer (`None`: cleared), not yet acted on.
    pub(super) selection: Option<Option<ObjectId>>,
    /// The offer that is the clipboard now.
    current: Option<ObjectId>,
    /// Pastes of a value we serve: which source, the type asked for, and the pipe to write to.
    pub(super) sends: Vec<(ObjectId, String, OwnedFd)>,
    /// Sources of ours that were replaced.
    pub(super) cancelled: Vec<ObjectId>,
    /// The data device is gone (the seat went away).
    pub(super) finished: bool,
}

impl Dispatch<WlRegistry, GlobalListContents> for Protocol {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: wayland_client::protocol::wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<WlSeat, ()> for Protocol {
    fn event(
        _: &mut Self,
        _: &WlSeat,
        _: wayland_client::protocol::wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<ZwlrDataControlManagerV1, ()> for Protocol {
    fn event(
        _: &mut Self,
        _: &ZwlrDataControlManagerV1,
        _: wayland_protocols_wlr::data_control::v1::client::zwlr_data_control_manager_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<ZwlrDataControlDeviceV1, ()> for Protocol {
    fn event(
        protocol: &mut Self,
        _: &ZwlrDataControlDeviceV1,
        event: zwlr_data_control_device_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwlr_data_control_device_v1::Event::DataOffer { id } => {
                protocol.offers.insert(id.id(), (id, Vec::new()));
            }
            zwlr_data_control_device_v1::Event::Selection { id } => {
                let id = id.map(|offer| offer.id());
                // The previous selection's offer is done with (offers announced since are not:
                // their selection event may come in a later batch).
                if let Some(previous) = std::mem::replace(&mut protocol.current, id.clone())
                    && Some(&previous) != id.as_ref()
                    && let Some((offer, _)) = protocol.offers.remove(&previous)
                {
                    offer.destroy();
                }
                protocol.selection = Some(id);
            }
            zwlr_data_control_device_v1::Event::PrimarySelection { id: Some(offer) } => {
                if let Some((offer, _)) = protocol.offers.remove(&offer.id()) {
                    offer.destroy();
                }
            }
            zwlr_data_control_device_v1::Event::Finished => protocol.finished = true,
            _ => {}
        }
    }

    event_created_child!(Protocol, ZwlrDataControlDeviceV1, [
        zwlr_data_control_device_v1::EVT_DATA_OFFER_OPCODE => (ZwlrDataControlOfferV1, ()),
    ]);
}

/// The most types of one offer kept (a program offers a few dozen at most).
const MAX_OFFERED_TYPES: usize = 256;

impl Dispatch<ZwlrDataControlOfferV1, ()> for Protocol {
    fn event(
        protocol: &mut Self,
        offer: &ZwlrDataControlOfferV1,
        event: zwlr_data_control_offer_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zwlr_data_control_offer_v1::Event::Offer { mime_type } = event
            && let Some((_, types)) = protocol.offers.get_mut(&offer.id())
        {
            // Bounded, whatever a client offers — but the marks that decide whether to read
            // at all (ours, a secret's) count wherever they come.
            let mark =
                mime_type == super::offer::RRT_SOURCE || mime_type == crate::read::SECRET_HINT;
            if types.len() < MAX_OFFERED_TYPES || mark {
                types.push(mime_type);
            }
        }
    }
}

impl Dispatch<ZwlrDataControlSourceV1, ()> for Protocol {
    fn event(
        protocol: &mut Self,
        source: &ZwlrDataControlSourceV1,
        event: zwlr_data_control_source_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwlr_data_control_source_v1::Event::Send { mime_type, fd } => {
                protocol.sends.push((source.id(), mime_type, fd));
            }
            zwlr_data_control_source_v1::Event::Cancelled => protocol.cancelled.push(source.id()),
            _ => {}
        }
    }
}
