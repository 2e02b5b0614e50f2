//! Event listeners and observers that belong to one chart, not to the page.
//!
//! A chart can be removed while the page lives on (the dashboard's "remove" button). Its
//! listeners on the window and its own elements would otherwise stay registered, and their
//! closures (which hold the chart's state) would never be freed: every chart added and
//! removed would leak. Everything registered here is unregistered and freed when the
//! component that made the [`Listeners`] is disposed.

use leptos::prelude::*;
use send_wrapper::SendWrapper;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::convert::FromWasmAbi;
use wasm_bindgen::JsCast;
use web_sys::EventTarget;

/// What to undo: a listener to remove (with its closure to free) or an observer to stop.
enum Held {
    Listener {
        target: EventTarget,
        kind: &'static str,
        callback: js_sys::Function,
        _closure: Box<dyn std::any::Any>,
    },
    Observer {
        observer: web_sys::ResizeObserver,
        _closure: Box<dyn std::any::Any>,
    },
}

/// The chart's registrations. Cheap to clone (they share one list).
#[derive(Clone)]
pub struct Listeners(Rc<RefCell<Vec<Held>>>);

impl Listeners {
    /// Lives as long as the current owner (the chart component).
    pub fn new() -> Self {
        let held = Rc::new(RefCell::new(Vec::new()));
        let on_dispose = SendWrapper::new(held.clone());
        on_cleanup(move || {
            let held: Rc<RefCell<Vec<Held>>> = on_dispose.take();
            for h in held.borrow_mut().drain(..) {
                match h {
                    Held::Listener {
                        target,
                        kind,
                        callback,
                        ..
                    } => {
                        let _ = target.remove_event_listener_with_callback(kind, &callback);
                    }
                    Held::Observer { observer, .. } => observer.disconnect(),
                }
            }
        });
        Self(held)
    }

    /// Calls `f` on each `kind` event of `target`. Not passive when `passive` is false, so
    /// wheel and touch handlers can keep the page from scrolling while they zoom the chart.
    pub fn on<E: FromWasmAbi + 'static>(
        &self,
        target: &EventTarget,
        kind: &'static str,
        passive: bool,
        f: impl FnMut(E) + 'static,
    ) {
        let closure = Closure::<dyn FnMut(E)>::new(f);
        let callback: js_sys::Function =
            closure.as_ref().unchecked_ref::<js_sys::Function>().clone();
        let opts = web_sys::AddEventListenerOptions::new();
        opts.set_passive(passive);
        if target
            .add_event_listener_with_callback_and_add_event_listener_options(kind, &callback, &opts)
            .is_ok()
        {
            self.0.borrow_mut().push(Held::Listener {
                target: target.clone(),
                kind,
                callback,
                _closure: Box::new(closure),
            });
        }
    }

    /// Calls `f` whenever `el` changes size.
    pub fn on_resize(&self, el: &web_sys::Element, f: impl FnMut() + 'static) {
        let closure = Closure::<dyn FnMut()>::new(f);
        if let Ok(observer) = web_sys::ResizeObserver::new(closure.as_ref().unchecked_ref()) {
            observer.observe(el);
            self.0.borrow_mut().push(Held::Observer {
                observer,
                _closure: Box::new(closure),
            });
        }
    }
}
